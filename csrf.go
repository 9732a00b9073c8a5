package session

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// CSRF protection, in two layers. The origin layer (origin.go) refuses an
// unsafe request that a browser says, or shows by its Origin header, came
// from another origin. The token layer refuses an unsafe request that does
// not carry a synchronizer token of its session: a secret of csrfLen random
// bytes, given to pages masked (a fresh random pad per token, against
// BREACH) and compared in constant time.
//
// Where the secret lives: a session that is stored (or that this request
// will store) keeps it in its record (record.go, version 2). A visitor
// without a stored session, such as one who only looks at the login form,
// gets it in a signed, HttpOnly, browser-session cookie instead, so that
// showing a form costs no store write; a stored session without a secret of
// its own (written before its first token was asked for, or by an older
// version) also accepts that cookie. Once the session holds its own secret
// the cookie is no longer read, and it is expired. RegenerateID and Destroy
// replace the secret (session.go), so no token issued before a login
// verifies after it.

const (
	csrfLen   = 32 // bytes of a CSRF secret
	maskedLen = 86 // base64url (unpadded) length of a masked token: pad || pad^secret, 64 bytes
)

// Reasons for refusing a request; each wraps ErrCSRF.
var (
	errCrossSite      = fmt.Errorf("%w: cross-origin request (Sec-Fetch-Site is neither same-origin nor none)", ErrCSRF)
	errCrossOrigin    = fmt.Errorf("%w: cross-origin request (the Origin header is not the request's own origin)", ErrCSRF)
	errTokenMissing   = fmt.Errorf("%w: missing token (none in the request's header or form field)", ErrCSRF)
	errTokenNotIssued = fmt.Errorf("%w: missing token (none was issued to this client: the session has none and there is no valid CSRF cookie)", ErrCSRF)
	errTokenWrong     = fmt.Errorf("%w: wrong token", ErrCSRF)
)

// CSRFConfig configures NewCSRF. The zero value works: every field has a
// documented default.
type CSRFConfig struct {
	// Next, when it returns true, skips the protection for the request: it is
	// neither checked nor can CSRFToken give a token for it.
	Next func(c *fiber.Ctx) bool

	// ErrorHandler answers a refused request; err wraps ErrCSRF and says why.
	// A store failure while loading the session is not a refusal: it is
	// returned to the session middleware, whose Config.ErrorHandler answers
	// it. Default: 403 with the plain text "Forbidden" (no internals); the
	// reason is logged at debug level.
	ErrorHandler fiber.ErrorHandler

	// FieldName is the form field (urlencoded or multipart body) that carries
	// the token of a form post. Default: "csrf_token". The query string is
	// never read: tokens in URLs leak through logs and Referer headers.
	FieldName string

	// HeaderName is the request header that carries the token of a fetch or
	// XMLHttpRequest; it is read before the form field. Default:
	// "X-CSRF-Token".
	HeaderName string

	// CookieName names the cookie that holds the secret of a visitor without
	// a stored session. It takes Path, Domain, Secure and SameSite from the
	// session cookie, and is always HttpOnly and a browser-session cookie.
	// Default: "__Host-csrf" when the session cookie is Secure with Path "/"
	// and no Domain, else "csrf". Set distinct names when several managers
	// have a CSRF protection on one site.
	CookieName string

	// TrustedOrigins are origins, "scheme://host[:port]" each (no path, no
	// trailing slash), whose cross-origin requests pass the origin check.
	// They still need a valid token. Origins compare as origins do: scheme
	// and host case-insensitively, "https://h:443" equal to "https://h".
	TrustedOrigins []string
}

// CSRF protects one Manager's sessions from cross-site request forgery:
// a browser's cross-site form post or fetch is refused before it can change
// a session or sign anybody in, while same-origin requests with a token
// pass. Build it with NewCSRF; it is safe for concurrent use.
type CSRF struct {
	cfg     CSRFConfig
	host    csrfHost         // the manager, without its types
	signer  *signer          // the CSRF cookie's: the manager's keys under a name of its own
	cookie  *fasthttp.Cookie // the CSRF cookie's name and attributes; never changed
	trusted map[string]bool  // TrustedOrigins, as trustedOrigin gives them
	log     *slog.Logger

	warnPlainHTTP sync.Once
}

// csrfHost is what the protection needs of its Manager; *Manager[V, F]
// implements it.
type csrfHost interface {
	// csrfSession returns the request's session, loading it when needed;
	// loaded reports that this call loaded it.
	csrfSession(ctx *fasthttp.RequestCtx) (s csrfSession, loaded bool, err error)
	// csrfUnload forgets a session csrfSession loaded, unchanged: the
	// handler's Get reads it again and nothing is saved.
	csrfUnload(ctx *fasthttp.RequestCtx)
}

// csrfSession is what the protection needs of a session; *Session[V, F]
// implements it (session.go).
type csrfSession interface {
	csrfSecret() (secret []byte, kept bool)
	setCSRFSecret(secret []byte, save bool)
	flashPending() bool
}

func (m *Manager[V, F]) csrfSession(ctx *fasthttp.RequestCtx) (csrfSession, bool, error) {
	had, _ := ctx.UserValue(m).(*Session[V, F])
	s, err := m.session(ctx)
	if err != nil {
		return nil, false, err
	}
	return s, had == nil, nil
}

func (m *Manager[V, F]) csrfUnload(ctx *fasthttp.RequestCtx) {
	ctx.SetUserValue(m, (*Session[V, F])(nil))
}

// NewCSRF returns the CSRF protection of m's sessions. Install its Handler
// after m's (or wrap with FastHTTP inside m.FastHTTP), on every route whose
// unsafe methods (anything but GET, HEAD and OPTIONS) change state; pages
// with a form or a script that posts get their token from CSRFToken or
// Token. Safe methods are never checked, so they must not change state.
//
// A bad configuration is an error wrapping ErrConfig that names the field.
func NewCSRF[V, F any](m *Manager[V, F], cfg CSRFConfig) (*CSRF, error) {
	bad := func(format string, a ...any) (*CSRF, error) {
		return nil, fmt.Errorf("%w: CSRFConfig."+format, append([]any{ErrConfig}, a...)...)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: NewCSRF needs a Manager", ErrConfig)
	}
	if cfg.FieldName == "" {
		cfg.FieldName = "csrf_token"
	}
	if strings.ContainsFunc(cfg.FieldName, badAttr) {
		return bad("FieldName %q has control characters", cfg.FieldName)
	}
	if cfg.HeaderName == "" {
		cfg.HeaderName = "X-CSRF-Token"
	}
	switch {
	case !validName(cfg.HeaderName):
		return bad("HeaderName %q is not a valid header name", cfg.HeaderName)
	case reservedHeader(cfg.HeaderName):
		return bad("HeaderName %q is a header HTTP, browsers or proxies give a meaning of their own; choose another", cfg.HeaderName)
	case strings.EqualFold(cfg.HeaderName, m.cfg.Header):
		return bad("HeaderName %q is the session's Config.Header", cfg.HeaderName)
	}
	sc := m.cookie
	secure, path, domain := sc.Secure(), string(sc.Path()), string(sc.Domain())
	if cfg.CookieName == "" {
		cfg.CookieName = "csrf"
		if secure && path == "/" && domain == "" {
			cfg.CookieName = "__Host-csrf"
		}
	}
	switch name := cfg.CookieName; {
	case !validName(name):
		return bad("CookieName %q has characters a cookie name cannot have", name)
	case name == m.cfg.CookieName:
		return bad("CookieName %q is the session cookie's name", name)
	case hasPrefixFold(name, "__Host-") && (!secure || path != "/" || domain != ""):
		return bad("CookieName %q: a __Host- cookie (the prefix in any letter case) must be Secure, have Path / and no Domain, and the CSRF cookie takes these from the session cookie", name)
	case hasPrefixFold(name, "__Secure-") && !secure:
		return bad("CookieName %q: a __Secure- cookie (the prefix in any letter case) must be Secure, and the CSRF cookie takes Secure from the session cookie", name)
	}
	trusted := make(map[string]bool, len(cfg.TrustedOrigins))
	for i, o := range cfg.TrustedOrigins {
		key, err := trustedOrigin(o)
		if err != nil {
			return bad("TrustedOrigins[%d] %q: %v", i, o, err)
		}
		trusted[key] = true
	}
	cfg.TrustedOrigins = append([]string(nil), cfg.TrustedOrigins...)
	p := &CSRF{
		cfg:     cfg,
		host:    m,
		signer:  newSigner(csrfSignerName(m.cfg.CookieName), m.cfg.Secrets),
		cookie:  new(fasthttp.Cookie),
		trusted: trusted,
		log:     m.log,
	}
	p.cookie.CopyTo(sc)
	p.cookie.SetKey(cfg.CookieName)
	p.cookie.SetHTTPOnly(true)
	if p.cfg.ErrorHandler == nil {
		p.cfg.ErrorHandler = func(c *fiber.Ctx, err error) error {
			p.forbid(c.Context(), err)
			return nil
		}
	}
	return p, nil
}

// csrfSignerName is the name the CSRF cookie's signatures are made under:
// it starts with a byte no cookie name has, so no session cookie value
// verifies as a CSRF cookie nor the other way round, and it names the
// session cookie, so the CSRF cookie of one manager does not verify for
// another with the same keys.
func csrfSignerName(sessionCookie string) string { return "\x00csrf|" + sessionCookie }

// Handler returns the Fiber v2 middleware. Install it after the session
// middleware of the Manager given to NewCSRF. Unsafe requests that fail a
// check are answered by CSRFConfig.ErrorHandler and never reach the next
// handler; a store failure while loading the session is returned, for the
// session middleware's error handler.
func (p *CSRF) Handler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if p.cfg.Next != nil && p.cfg.Next(c) {
			return c.Next()
		}
		ctx := c.Context()
		p.mark(ctx)
		if !safeMethod(ctx.Method()) {
			if err := p.check(ctx, c.Protocol()+"://"+c.Hostname()); err != nil {
				if errors.Is(err, ErrCSRF) {
					return p.cfg.ErrorHandler(c, err)
				}
				return err
			}
		}
		return c.Next()
	}
}

// FastHTTP wraps a plain fasthttp handler; use it inside the Manager's
// FastHTTP wrapper, whose session it checks. The request's own origin is
// "https" for TLS connections, else "http", with the Host header. A refused
// request (an error wrapping ErrCSRF) and one whose session could not be
// loaded (a *StoreError) go to onError, which should answer them and must
// tell them apart; nil answers the first with 403 "Forbidden" and logs the
// second and answers 500 "Internal Server Error", as the session
// middleware's default does. next never runs for either.
func (p *CSRF) FastHTTP(next fasthttp.RequestHandler, onError func(ctx *fasthttp.RequestCtx, err error)) fasthttp.RequestHandler {
	if onError == nil {
		onError = p.fail
	}
	return func(ctx *fasthttp.RequestCtx) {
		p.mark(ctx)
		if !safeMethod(ctx.Method()) {
			scheme := "http://"
			if ctx.IsTLS() {
				scheme = "https://"
			}
			if err := p.check(ctx, scheme+string(ctx.Host())); err != nil {
				onError(ctx, err)
				return
			}
		}
		next(ctx)
	}
}

// Check applies both checks to a request, for adapters to other frameworks
// on fasthttp: origin is the request's own origin, "scheme://host[:port]"
// as the framework sees it (behind a proxy, from the forwarded headers it
// trusts). It returns nil for safe methods without loading the session. A
// refusal wraps ErrCSRF; a store failure while loading the session is a
// *StoreError, and a request the Manager does not serve ErrNoMiddleware. A
// request Check or Token has seen counts as protected: RegenerateID and
// Destroy give its session a new secret at once.
func (p *CSRF) Check(ctx *fasthttp.RequestCtx, origin string) error {
	p.mark(ctx)
	return p.check(ctx, origin)
}

// Token returns a token for the request's session, to put in a form's
// hidden field (CSRFConfig.FieldName) or send in the header
// (CSRFConfig.HeaderName). Every call gives a different string (the secret,
// masked with a fresh random pad), and all of them verify until the session
// is rotated or destroyed. It loads the session. A visitor without a stored
// session gets the secret in the CSRF cookie, which costs no store write; a
// stored session without a secret gets one, which its save writes. The
// error is that of loading the session (a *StoreError, or
// ErrNoMiddleware). Call Token after RegenerateID or Destroy, not before:
// they replace the secret.
func (p *CSRF) Token(ctx *fasthttp.RequestCtx) (string, error) {
	p.mark(ctx)
	s, _, err := p.host.csrfSession(ctx)
	if err != nil {
		return "", err
	}
	secret, kept := s.csrfSecret()
	if kept {
		if secret == nil {
			secret = newCSRFSecret()
			s.setCSRFSecret(secret, true)
		}
		p.dropCookie(ctx)
	} else {
		cookie := p.cookieSecret(ctx)
		if secret == nil {
			secret = cookie
			if secret == nil {
				secret = newCSRFSecret()
			}
			// The secret goes with the session too, in case this request
			// stores it after all: the page's tokens then still verify.
			s.setCSRFSecret(secret, false)
		}
		if !bytes.Equal(secret, cookie) {
			p.setCookie(ctx, secret)
		}
	}
	vary(&ctx.Response.Header) // the page now depends on the cookies
	return maskCSRF(secret), nil
}

// CSRFToken returns a token from the CSRF middleware serving c (see
// CSRF.Token). It fails with ErrNoCSRF when none does, with an error
// wrapping ErrAmbiguous when several do, and with the error of loading the
// session.
func CSRFToken(c *fiber.Ctx) (string, error) { return CSRFTokenFromRequest(c.Context()) }

// CSRFTokenFromRequest is CSRFToken for any framework on fasthttp: a token
// from the CSRF protection serving the request (one that ran Check, Token,
// Handler or FastHTTP on it).
func CSRFTokenFromRequest(ctx *fasthttp.RequestCtx) (string, error) {
	var p *CSRF
	n := 0
	ctx.VisitUserValuesAll(func(k, _ any) {
		if kp, ok := k.(*CSRF); ok {
			p, n = kp, n+1
		}
	})
	switch {
	case n == 0:
		return "", ErrNoCSRF
	case n > 1:
		return "", fmt.Errorf("%w: %d CSRF middlewares serve this request; call Token on the one you mean", ErrAmbiguous, n)
	}
	return p.Token(ctx)
}

// csrfMark is the value of the user value under a *CSRF: the protection
// serves the request.
type csrfMark struct{}

// mark records that p serves the request, for CSRFToken and for
// RegenerateID and Destroy (csrfServes).
func (p *CSRF) mark(ctx *fasthttp.RequestCtx) { ctx.SetUserValue(p, csrfMark{}) }

// csrfServes reports whether a CSRF protection of owner serves the request.
func csrfServes(ctx *fasthttp.RequestCtx, owner csrfHost) bool {
	if ctx == nil { // a detached session (detached.go)
		return false
	}
	served := false
	ctx.VisitUserValuesAll(func(k, _ any) {
		if p, ok := k.(*CSRF); ok && p.host == owner {
			served = true
		}
	})
	return served
}

// check applies both layers to an unsafe request.
func (p *CSRF) check(ctx *fasthttp.RequestCtx, origin string) error {
	if safeMethod(ctx.Method()) {
		return nil
	}
	if err := p.checkOrigin(ctx, origin); err != nil {
		return err
	}
	return p.checkToken(ctx)
}

// checkToken compares the request's token with the session's secret, or,
// when the session keeps none, with the CSRF cookie's. A session this check
// loads is forgotten again when the request is refused, so nothing is
// saved, and when it has flash messages, so the check does not consume
// them: the handler's Get reads the session afresh.
func (p *CSRF) checkToken(ctx *fasthttp.RequestCtx) (err error) {
	s, loaded, err := p.host.csrfSession(ctx)
	if err != nil {
		return err
	}
	if loaded {
		defer func() {
			if err != nil || s.flashPending() {
				p.host.csrfUnload(ctx)
			}
		}()
	}
	tok := p.submitted(ctx)
	if len(tok) == 0 {
		return errTokenMissing
	}
	secret, kept := s.csrfSecret()
	own := kept && secret != nil
	if !own {
		if secret = p.cookieSecret(ctx); secret == nil {
			return errTokenNotIssued
		}
	}
	var got [csrfLen]byte
	if !unmaskCSRF(tok, &got) || subtle.ConstantTimeCompare(got[:], secret) != 1 {
		return errTokenWrong
	}
	if own {
		p.dropCookie(ctx)
	}
	return nil
}

// submitted returns the request's token: the header's, else the form
// field's of an urlencoded or multipart body.
func (p *CSRF) submitted(ctx *fasthttp.RequestCtx) []byte {
	if v := ctx.Request.Header.Peek(p.cfg.HeaderName); len(v) > 0 {
		return v
	}
	ct := ctx.Request.Header.ContentType()
	switch {
	case bytes.HasPrefix(ct, []byte("application/x-www-form-urlencoded")):
		return ctx.PostArgs().Peek(p.cfg.FieldName)
	case bytes.HasPrefix(ct, []byte("multipart/form-data")):
		if f, err := ctx.MultipartForm(); err == nil && len(f.Value[p.cfg.FieldName]) > 0 {
			v := f.Value[p.cfg.FieldName][0]
			return unsafe.Slice(unsafe.StringData(v), len(v)) // read only
		}
	}
	return nil
}

// cookieSecret returns the secret of the request's CSRF cookie, or nil when
// it has none that verifies.
func (p *CSRF) cookieSecret(ctx *fasthttp.RequestCtx) []byte {
	v := ctx.Request.Header.Cookie(string(p.cookie.Key()))
	if len(v) == 0 {
		return nil
	}
	id, _, ok := p.signer.verify(v)
	if !ok {
		return nil
	}
	secret := make([]byte, csrfLen)
	if n, err := enc.Decode(secret, unsafe.Slice(unsafe.StringData(id), len(id))); err != nil || n != csrfLen { // read only
		return nil
	}
	return secret
}

// setCookie sends secret in the CSRF cookie.
func (p *CSRF) setCookie(ctx *fasthttp.RequestCtx, secret []byte) {
	p.sendCookie(ctx, p.signer.sign(enc.EncodeToString(secret)))
	if p.cookie.Secure() && plainHTTP(ctx) {
		p.warnPlainHTTP.Do(func() {
			p.log.Warn("session: a Secure CSRF cookie was sent over plain HTTP to a host other than localhost; browsers drop it, so forms of visitors without a session will be refused (serve HTTPS, trust your proxy's X-Forwarded-Proto, or set CookieInsecure for development)", "host", string(ctx.Host()))
		})
	}
}

// dropCookie expires the CSRF cookie when the request carries one or the
// response sets one: the session keeps its own secret.
func (p *CSRF) dropCookie(ctx *fasthttp.RequestCtx) {
	name := string(p.cookie.Key())
	if len(ctx.Request.Header.Cookie(name)) > 0 || len(ctx.Response.Header.PeekCookie(name)) > 0 {
		p.sendCookie(ctx, "")
	}
}

// sendCookie sets the CSRF cookie to value, or expires it when value is "".
func (p *CSRF) sendCookie(ctx *fasthttp.RequestCtx, value string) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.CopyTo(p.cookie)
	c.SetValue(value)
	if value == "" {
		c.SetExpire(fasthttp.CookieExpireDelete)
	}
	ctx.Response.Header.SetCookie(c)
	vary(&ctx.Response.Header)
}

// fail is FastHTTP's default error handler.
func (p *CSRF) fail(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, ErrCSRF) {
		p.forbid(ctx, err)
		return
	}
	fail(p.log, ctx, err)
}

// forbid answers a refused request: 403 "Forbidden", no internals.
func (p *CSRF) forbid(ctx *fasthttp.RequestCtx, err error) {
	p.log.Debug("session: CSRF protection refused a request", "err", err, "method", string(ctx.Method()), "path", string(ctx.Path()))
	ctx.Response.ResetBody()
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(fasthttp.StatusForbidden)
	ctx.SetBodyString("Forbidden")
}

// newCSRFSecret returns csrfLen bytes from crypto/rand.
func newCSRFSecret() []byte {
	b := make([]byte, csrfLen)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return b
}

// maskCSRF returns base64url(pad || pad XOR secret) with a fresh random pad:
// a different string every call, all of which unmask to secret, so a
// compressed response never repeats the secret (BREACH).
func maskCSRF(secret []byte) string {
	var b [2 * csrfLen]byte
	_, _ = rand.Read(b[:csrfLen])
	for i := range csrfLen {
		b[csrfLen+i] = b[i] ^ secret[i]
	}
	return enc.EncodeToString(b[:])
}

// unmaskCSRF writes the secret of a masked token into out and reports
// whether tok was a well-formed masked token. It never panics on any input.
func unmaskCSRF(tok []byte, out *[csrfLen]byte) bool {
	var b [2 * csrfLen]byte
	if len(tok) != maskedLen {
		return false
	}
	if n, err := enc.Decode(b[:], tok); err != nil || n != len(b) {
		return false
	}
	for i := range csrfLen {
		out[i] = b[i] ^ b[csrfLen+i]
	}
	return true
}
