package session

import (
	"errors"
	"net/url"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// The origin layer of the CSRF protection, by the rules of Go's
// net/http.CrossOriginProtection (Go 1.25): safe methods pass; with a
// Sec-Fetch-Site header (every browser since 2023), "same-origin" and
// "none" pass and anything else fails unless the Origin is trusted; without
// it, a request without Origin passes (not a browser, or an old one: the
// token layer still applies), an Origin equal to the request's own origin
// passes, and any other fails unless trusted. Unlike Go's, which compares
// only the Origin's host with the Host header, the scheme is compared too,
// against the origin the framework sees (its trusted proxy headers
// included).

// safeMethod reports whether method is GET, HEAD or OPTIONS, which the
// protection never checks.
func safeMethod(method []byte) bool {
	switch string(method) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions:
		return true
	}
	return false
}

// checkOrigin applies the origin layer to an unsafe request whose own origin
// is self ("scheme://host").
func (p *CSRF) checkOrigin(ctx *fasthttp.RequestCtx, self string) error {
	h := &ctx.Request.Header
	origin := b2s(h.Peek("Origin"))
	switch string(h.Peek("Sec-Fetch-Site")) {
	case "":
		// An old browser, or not a browser: fall back to Origin.
	case "same-origin", "none":
		return nil
	default: // same-site, cross-site, or anything else
		if p.isTrusted(origin) {
			return nil
		}
		return errCrossSite
	}
	if origin == "" || sameOrigin(origin, self) || p.isTrusted(origin) {
		return nil
	}
	return errCrossOrigin
}

// isTrusted reports whether origin is one of CSRFConfig.TrustedOrigins.
func (p *CSRF) isTrusted(origin string) bool {
	if len(p.trusted) == 0 || origin == "" {
		return false
	}
	scheme, host, ok := splitOrigin(origin)
	return ok && p.trusted[strings.ToLower(scheme)+"://"+strings.ToLower(host)]
}

// sameOrigin reports whether the origins a and b ("scheme://host[:port]")
// are the same: scheme and host equal but for ASCII case, a scheme's
// default port equal to no port.
func sameOrigin(a, b string) bool {
	as, ah, ok := splitOrigin(a)
	if !ok {
		return false
	}
	bs, bh, ok := splitOrigin(b)
	return ok && strings.EqualFold(as, bs) && strings.EqualFold(ah, bh)
}

// splitOrigin splits "scheme://host[:port]" into the scheme and the host
// with its port, dropping the scheme's default port (80 for http, 443 for
// https). ok is false for anything else: no scheme, no host, a path, query,
// fragment or user info, "null", or a byte outside ASCII (browsers send
// internationalized host names in punycode), so that the case folding of
// the callers is ASCII's alone.
func splitOrigin(s string) (scheme, host string, ok bool) {
	i := strings.Index(s, "://")
	if i <= 0 || !ascii(s) {
		return "", "", false
	}
	scheme, host = s[:i], s[i+3:]
	if strings.ContainsAny(host, "/?#@\\ \t") {
		return "", "", false
	}
	switch {
	case strings.EqualFold(scheme, "http"):
		host = strings.TrimSuffix(host, ":80")
	case strings.EqualFold(scheme, "https"):
		host = strings.TrimSuffix(host, ":443")
	}
	host = strings.TrimSuffix(host, ":") // an empty port is the default one
	return scheme, host, host != ""
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// trustedOrigin checks a CSRFConfig.TrustedOrigins entry and returns the key
// isTrusted looks it up by.
func trustedOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return "", errors.New("not a URL")
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return "", errors.New(`not "scheme://host[:port]"`)
	case u.User != nil:
		return "", errors.New("user info is not part of an origin")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(o, "?#"):
		return "", errors.New("an origin has no path (not even a trailing slash), query or fragment")
	}
	scheme, host, ok := splitOrigin(o)
	if !ok {
		return "", errors.New(`not "scheme://host[:port]"`)
	}
	return strings.ToLower(scheme) + "://" + strings.ToLower(host), nil
}

// b2s returns b as a string without copying; b must not change while the
// string is in use.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
