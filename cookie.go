package session

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fibersession/session/internal/ttl"
)

// token returns the verified id the request carries: from Config.Header when
// the request has a non-empty value of it, else from the cookie. The header
// is never merged with the cookie: a header that does not verify yields a
// fresh session even next to a valid cookie. The request may carry the
// header, or the cookie, several times: values that do not verify are
// skipped, and valid values that name different sessions yield a fresh
// session (an attacker who can add a value must not choose which one wins).
// key is the highest index of a key that verified a value, so that a value
// signed with an older key is re-issued.
func (m *Manager[V, F]) token(ctx *fasthttp.RequestCtx) (id string, key int, ok bool) {
	var t tokens
	if m.cfg.Header != "" {
		for _, v := range ctx.Request.Header.PeekAll(m.cfg.Header) {
			if len(v) > 0 {
				t.add(m.signer, v)
			}
		}
		if t.seen {
			return t.result(m.log, "header values")
		}
	}
	ctx.Request.Header.VisitAllCookie(func(k, v []byte) {
		if string(k) == m.cfg.CookieName {
			t.add(m.signer, v)
		}
	})
	return t.result(m.log, "cookies")
}

// tokens gathers the signed values of one request's header or cookies.
type tokens struct {
	id    string // the id of the valid values
	key   int    // the highest key index that verified one
	ok    bool   // a value verified
	clash bool   // valid values name different sessions
	seen  bool   // a value was added, valid or not
}

// add verifies v and records its id.
func (t *tokens) add(s *signer, v []byte) {
	t.seen = true
	if t.clash {
		return
	}
	id, key, ok := s.verify(v)
	switch {
	case !ok:
	case t.ok && id != t.id:
		t.clash = true
	default:
		t.id, t.key, t.ok = id, max(t.key, key), true
	}
}

// result returns the id the values name, or ok false when none verified or
// they name different sessions; the latter is logged at debug level, with
// what ("cookies", "header values") naming the values.
func (t *tokens) result(log *slog.Logger, what string) (id string, key int, ok bool) {
	if t.clash {
		log.Debug("session: several valid " + what + " name different sessions; starting fresh")
		return "", 0, false
	}
	return t.id, t.key, t.ok
}

// sendCookie sets the cookie when the client's differs from the session's:
// a new id, a re-signed value, a new Max-Age, or a destroyed session. It
// never sends one for an id that is not live: a read-only grace copy's, or
// one dropped because another request destroyed or moved the session.
func (s *Session[V, F]) sendCookie() {
	persistent := s.m.cfg.CookiePersistent || s.rec.idle > 0
	switch {
	case s.stored && !s.rot.readOnly && (s.id != s.client || s.resign || s.recookie || persistent && s.exp.extended):
		maxAge := time.Duration(0)
		if persistent {
			maxAge = s.exp.ttl // what the store gives the record
			if maxAge <= 0 {
				maxAge = s.ttlAt(s.m.now())
			}
		}
		s.m.setCookie(s.req, s.m.signer.sign(s.id), maxAge)
		s.client, s.resign, s.recookie, s.exp.extended = s.id, false, false, false
	case s.destroyed && s.client != "" && !s.stored:
		s.m.setCookie(s.req, "", 0)
		s.client = ""
	}
}

// setCookie sends token (or, when token is "", an expired cookie) with
// maxAge (0: a browser-session cookie), and the headers that keep shared
// caches from storing it.
func (m *Manager[V, F]) setCookie(ctx *fasthttp.RequestCtx, token string, maxAge time.Duration) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.CopyTo(m.cookie)
	c.SetValue(token)
	switch {
	case token == "":
		c.SetExpire(fasthttp.CookieExpireDelete)
	case maxAge > 0:
		c.SetMaxAge(int(ttl.Round(maxAge, time.Second) / time.Second))
	}
	if token != "" && c.Secure() && plainHTTP(ctx) {
		m.warnPlainHTTP.Do(func() {
			m.log.Warn("session: a Secure cookie was sent over plain HTTP to a host other than localhost; browsers drop it, so sessions will not stick (serve HTTPS, trust your proxy's X-Forwarded-Proto, or set CookieInsecure for development)", "host", string(ctx.Host()))
		})
	}
	h := &ctx.Response.Header
	h.SetCookie(c)
	if m.cfg.Header != "" {
		h.Set(m.cfg.Header, token)
	}
	vary(h)
}

// newCookie returns the session cookie's name and attributes.
func newCookie[V, F any](cfg Config[V, F]) *fasthttp.Cookie {
	c := new(fasthttp.Cookie)
	c.SetKey(cfg.CookieName)
	c.SetPath(cfg.CookiePath)
	c.SetDomain(cfg.CookieDomain)
	c.SetHTTPOnly(!cfg.CookieScriptable)
	c.SetSecure(!cfg.CookieInsecure)
	switch cfg.CookieSameSite {
	case "Strict":
		c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	case "None":
		c.SetSameSite(fasthttp.CookieSameSiteNoneMode)
	default:
		c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	}
	return c
}

// vary adds "Vary: Cookie" and `Cache-Control: no-cache="Set-Cookie"` to a
// response that sets a cookie, keeping what the headers already say.
func vary(h *fasthttp.ResponseHeader) {
	if !hasToken(h.Peek(fasthttp.HeaderVary), "Cookie") {
		h.Add(fasthttp.HeaderVary, "Cookie")
	}
	const nc = `no-cache="Set-Cookie"`
	if cc := h.Peek(fasthttp.HeaderCacheControl); len(cc) == 0 {
		h.Set(fasthttp.HeaderCacheControl, nc)
	} else if !hasToken(cc, nc) {
		h.Set(fasthttp.HeaderCacheControl, string(cc)+", "+nc)
	}
}

// hasToken reports whether the comma-separated list has tok (ASCII case-insensitive).
func hasToken(list []byte, tok string) bool {
	for len(list) > 0 {
		var item []byte
		item, list, _ = bytes.Cut(list, []byte{','})
		if bytes.EqualFold(bytes.TrimSpace(item), []byte(tok)) {
			return true
		}
	}
	return false
}

// plainHTTP reports whether the request reached the app over plain HTTP for a
// host other than localhost: not TLS, and no proxy said https in
// X-Forwarded-Proto, X-Forwarded-Ssl or Forwarded. Browsers keep Secure
// cookies only from https and from localhost.
func plainHTTP(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsTLS() {
		return false
	}
	h := &ctx.Request.Header
	if bytes.EqualFold(h.Peek("X-Forwarded-Proto"), []byte("https")) || bytes.EqualFold(h.Peek("X-Forwarded-Ssl"), []byte("on")) ||
		bytes.Contains(bytes.ToLower(h.Peek("Forwarded")), []byte("proto=https")) {
		return false
	}
	host := b2s(ctx.Host()) // no allocation: this runs whenever a cookie is set
	if strings.HasPrefix(host, "[") {
		host, _, _ = strings.Cut(host[1:], "]")
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		host = host[:i]
	}
	return host != "localhost" && !strings.HasSuffix(host, ".localhost") && !isLoopback(host)
}

// isLoopback reports whether host is a loopback IP address.
func isLoopback(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
