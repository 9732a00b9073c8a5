package session

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session/stores/memory"
)

// Config configures the middleware. The zero value works: every field has a
// documented default, filled in by NewManager.
type Config[V, F any] struct {
	// Next, when it returns true, skips the middleware for the request: the
	// session is unavailable (Get returns ErrNoMiddleware) and nothing is saved.
	Next func(c *fiber.Ctx) bool

	// ErrorHandler answers a request whose session could not be loaded or
	// saved: the store failed (a *StoreError), a value did not encode (an
	// error wrapping ErrEncode), or the record outgrew MaxRecordSize (an
	// error wrapping ErrTooLarge). Default: log the error and answer 500 with
	// the plain text "Internal Server Error" (no internals).
	ErrorHandler fiber.ErrorHandler

	// Store keeps the records. Default: a new in-memory store (stores/memory).
	Store Store

	// Secrets are the HMAC-SHA256 keys for the cookie, each at least 32 bytes
	// and not one byte repeated (NewManager refuses both with ErrConfig):
	// the first signs, all verify. To rotate, put the new key first and keep
	// the old ones until their cookies have expired. Default: one random key
	// made at start with a warning (sessions then do not survive a restart).
	Secrets [][]byte

	// Codec encodes values and flash messages. Default: JSON (sonic).
	Codec Codec

	// Logger receives warnings (no secret configured, undecodable records) and
	// debug notes. Default: slog.Default().
	Logger *slog.Logger

	// IdleTimeout ends a session not used for this long; every use extends it
	// (sliding). Sessions may override it with SetIdleTimeout. Default: 24h.
	IdleTimeout time.Duration

	// AbsoluteTimeout ends a session this long after it was created or its id
	// was last regenerated, however active. Must not be shorter than
	// IdleTimeout. Default: 7 days.
	AbsoluteTimeout time.Duration

	// TouchInterval is the least time between two extensions of an unchanged
	// session's idle expiry. Default: one minute, or IdleTimeout/2 if shorter.
	TouchInterval time.Duration

	// RotationGrace is how long the old id keeps a read-only copy after
	// RegenerateID(false). Default: one minute.
	RotationGrace time.Duration

	// StoreTimeout bounds each store call when positive. Default: 0, no bound
	// beyond the store client's own timeouts.
	StoreTimeout time.Duration

	// MaxRecordSize bounds a session's encoded record in bytes: a save that
	// would store more fails with an error wrapping ErrTooLarge, and nothing
	// stored changes. Default: 64 KiB.
	MaxRecordSize int

	// Devices keeps the user agent and IP address of each owned session's
	// latest write by a request (see Session.SetOwner) in its record, for
	// Manager.Devices. They are kept as long as the record, and deleted with
	// it. The IP is the connection's remote address (a proxy's, behind one).
	// Default: false, neither is kept.
	Devices bool

	// OnEvent, when set, receives an Event when a session is created,
	// rotated or destroyed, an owner is signed out, a record does not
	// decode, and after every store call (its latency) and store failure: a
	// place to count them with Prometheus or OpenTelemetry. It runs on the
	// request's goroutine, in the middle of a load or save: it must be fast
	// and must not call the Manager. Default: none.
	OnEvent func(Event)

	// CookieName is the cookie's name; "__Host-" and "__Secure-" names, with
	// the prefix in any letter case (as browsers match it), are checked
	// against their rules. Default: "session".
	CookieName string
	// CookiePath is the cookie's Path. Default: "/".
	CookiePath string
	// CookieDomain is the cookie's Domain. Default: none (host only).
	CookieDomain string
	// CookieSameSite is "Lax", "Strict" or "None". Default: "Lax".
	CookieSameSite string
	// CookieInsecure drops the Secure attribute. Default: false (Secure).
	// Browsers accept Secure cookies from http://localhost.
	CookieInsecure bool
	// CookieScriptable drops the HttpOnly attribute. Default: false (HttpOnly).
	CookieScriptable bool
	// CookiePersistent gives the cookie a Max-Age equal to the session's
	// remaining lifetime, so it survives a browser restart. Default: false, a
	// browser-session cookie (sessions with SetIdleTimeout are persistent).
	CookiePersistent bool

	// Header, when set, names a request and response header that carries the
	// same signed value as the cookie, for API clients without a cookie jar.
	// A request's header, when it has a non-empty value, takes precedence over
	// its cookie; the header sent several times with values naming different
	// sessions gives a fresh session, as two such cookies do. The header is
	// not HttpOnly: scripts that can read a response can read it (see
	// SECURITY.md). Default: none.
	Header string
}

// withDefaults returns cfg with every unset field filled in, or an error
// naming the first invalid setting. It is the one place defaults live.
func withDefaults[V, F any](cfg Config[V, F]) (Config[V, F], error) {
	bad := func(format string, a ...any) (Config[V, F], error) {
		return cfg, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ErrorHandler == nil {
		log := cfg.Logger
		cfg.ErrorHandler = func(c *fiber.Ctx, err error) error {
			fail(log, c.Context(), err)
			return nil
		}
	}
	if cfg.Store == nil {
		cfg.Store = memory.New(memory.Config{})
	}
	if cfg.Codec == nil {
		cfg.Codec = JSON{}
	}
	for i, k := range cfg.Secrets {
		if len(k) < minKey {
			return cfg, fmt.Errorf("%w (secret %d has %d bytes)", ErrShortSecret, i, len(k))
		}
		if oneByte(k) {
			// A placeholder such as 32 zero bytes or "xxxx...": long enough,
			// but anyone can guess it. The byte is not named, so the error
			// does not put a secret in a log.
			return bad("secret %d is one byte repeated %d times, a placeholder anyone can guess; use random bytes (for example 32 from crypto/rand)", i, len(k))
		}
	}
	if len(cfg.Secrets) == 0 {
		k := make([]byte, minKey)
		_, _ = rand.Read(k)
		cfg.Secrets = [][]byte{k}
		cfg.Logger.Warn("session: no Secrets configured; using a random key, so sessions will not survive a restart")
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 24 * time.Hour
	}
	if cfg.AbsoluteTimeout == 0 {
		cfg.AbsoluteTimeout = 7 * 24 * time.Hour
	}
	if cfg.IdleTimeout < 0 || cfg.AbsoluteTimeout < 0 || cfg.TouchInterval < 0 || cfg.RotationGrace < 0 || cfg.StoreTimeout < 0 {
		return bad("timeouts must not be negative")
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"IdleTimeout", cfg.IdleTimeout}, {"AbsoluteTimeout", cfg.AbsoluteTimeout}, {"RotationGrace", cfg.RotationGrace}} {
		if t.d > 0 && t.d < time.Second {
			// Stores keep whole seconds: a shorter lifetime would silently
			// last longer than asked.
			return bad("%s (%s) is below one second, the least lifetime a store keeps", t.name, t.d)
		}
	}
	if cfg.AbsoluteTimeout < cfg.IdleTimeout {
		return bad("AbsoluteTimeout (%s) is shorter than IdleTimeout (%s)", cfg.AbsoluteTimeout, cfg.IdleTimeout)
	}
	if cfg.TouchInterval == 0 {
		cfg.TouchInterval = min(time.Minute, cfg.IdleTimeout/2)
	}
	if cfg.RotationGrace == 0 {
		cfg.RotationGrace = time.Minute
	}
	if cfg.MaxRecordSize < 0 {
		return bad("MaxRecordSize must not be negative")
	}
	if cfg.MaxRecordSize == 0 {
		cfg.MaxRecordSize = 64 << 10
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "session"
	}
	if !validName(cfg.CookieName) {
		return bad("cookie name %q has characters a cookie name cannot have", cfg.CookieName)
	}
	if cfg.CookiePath == "" {
		cfg.CookiePath = "/"
	}
	if cfg.CookiePath[0] != '/' || strings.ContainsFunc(cfg.CookiePath, badAttr) {
		return bad("CookiePath %q must start with \"/\" and have no ';' or control characters", cfg.CookiePath)
	}
	if cfg.CookieDomain != "" && !validDomain(cfg.CookieDomain) {
		return bad("CookieDomain %q must be a bare host name such as \"example.com\": no scheme, port, path, spaces or ';'", cfg.CookieDomain)
	}
	switch strings.ToLower(cfg.CookieSameSite) {
	case "", "lax":
		cfg.CookieSameSite = "Lax"
	case "strict":
		cfg.CookieSameSite = "Strict"
	case "none":
		cfg.CookieSameSite = "None"
		if cfg.CookieInsecure {
			return bad("SameSite=None requires a Secure cookie")
		}
	default:
		return bad("CookieSameSite %q is not Lax, Strict or None", cfg.CookieSameSite)
	}
	// Browsers match the prefixes in any letter case ("__host-" is a
	// __Host- cookie), so the rules do too.
	if hasPrefixFold(cfg.CookieName, "__Secure-") && cfg.CookieInsecure {
		return bad("cookie name %q: a __Secure- cookie (the prefix in any letter case) must be Secure", cfg.CookieName)
	}
	if hasPrefixFold(cfg.CookieName, "__Host-") && (cfg.CookieInsecure || cfg.CookieDomain != "" || cfg.CookiePath != "/") {
		return bad("cookie name %q: a __Host- cookie (the prefix in any letter case) must be Secure, have Path / and no Domain", cfg.CookieName)
	}
	if cfg.Header != "" && !validName(cfg.Header) {
		return bad("header name %q is not a valid token", cfg.Header)
	}
	if reservedHeader(cfg.Header) {
		return bad("Header %q is a header HTTP, browsers or proxies give a meaning of their own; choose another, such as \"X-Session\"", cfg.Header)
	}
	return cfg, nil
}

// validName reports whether s is an RFC 7230 token (cookie and header names).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether s begins with prefix in any ASCII letter
// case, as browsers match the cookie name prefixes "__Host-" and
// "__Secure-".
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// oneByte reports whether every byte of k is the same byte.
func oneByte(k []byte) bool {
	for _, c := range k {
		if c != k[0] {
			return false
		}
	}
	return len(k) > 0
}

// badAttr reports whether r cannot appear in a cookie attribute value.
func badAttr(r rune) bool { return r == ';' || r < ' ' || r == 0x7f }

// validDomain reports whether d is a host name a Domain attribute can carry:
// letters, digits, '-' and '.', optionally with one leading dot.
func validDomain(d string) bool {
	d = strings.TrimPrefix(d, ".")
	if d == "" || len(d) > 253 {
		return false
	}
	for _, c := range []byte(d) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.Contains(d, "..")
}

// reservedHeader reports whether name is a header that carries something else:
// message framing and connection headers, cookies, caching and the headers
// that browsers set themselves (a script cannot set Sec-* or Proxy-*).
func reservedHeader(name string) bool {
	n := strings.ToLower(name)
	if strings.HasPrefix(n, "sec-") || strings.HasPrefix(n, "proxy-") {
		return true
	}
	switch n {
	case "cookie", "set-cookie", "set-cookie2", "host", "content-length", "content-type", "content-encoding",
		"transfer-encoding", "te", "trailer", "connection", "keep-alive", "upgrade", "expect",
		"date", "vary", "cache-control", "pragma", "expires", "etag", "location", "server",
		"origin", "referer", "via", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto":
		return true
	}
	return false
}
