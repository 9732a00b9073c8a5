// Package cookiestore keeps each session's whole record in the browser, in a
// cookie of its own encrypted and authenticated with AES-GCM. Nothing is
// stored on the server, so any number of app instances share sessions with no
// database.
//
// The session middleware still sets its signed id cookie; this store adds a
// second cookie (default name "session_data") that holds
//
//	base64url(nonce || AES-GCM(key, expiry || len(id) || id || record))
//
// with the cookie name as additional data, so a value cannot be moved to
// another cookie or another session id. Keys rotate like the middleware's
// secrets: the first encrypts, all decrypt.
//
// What holds and what cannot:
//   - Records are limited to what fits a browser cookie: Set refuses, with
//     ErrTooLarge, a record whose cookie would exceed Config.MaxSize (4096
//     bytes by default) instead of emitting a cookie the browser would drop.
//   - Deleting cannot revoke a copy: Destroy and RegenerateID(true) expire the
//     cookie in this browser, but anyone who kept an earlier cookie value can
//     replay it until its expiry. Keep IdleTimeout short, or use a server-side
//     store when logout must be final.
//   - There is no compare-and-set: two concurrent requests of one browser each
//     send back a whole record and the browser keeps the last cookie it gets.
//   - The rotation grace copy is not written (one browser holds one cookie).
//   - It needs the session middleware: store calls made outside a request
//     fail with ErrNoRequest.
package cookiestore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fibersession/session"
)

// Errors returned by the store.
var (
	ErrTooLarge  = errors.New("cookiestore: record too large for a cookie")
	ErrNoRequest = errors.New("cookiestore: store call outside a request of the session middleware")
)

// Config configures the store. Set the cookie attributes like the session
// middleware's, so both cookies travel together.
type Config struct {
	// Keys are AES keys of 16, 24 or 32 bytes: the first encrypts, all
	// decrypt. Required.
	Keys [][]byte
	// CookieName is the data cookie's name. Default: "session_data".
	CookieName string
	// CookiePath is its Path. Default: "/".
	CookiePath string
	// CookieDomain is its Domain. Default: none.
	CookieDomain string
	// CookieSameSite is "Lax", "Strict" or "None". Default: "Lax".
	CookieSameSite string
	// CookieInsecure drops the Secure attribute. Default: false.
	CookieInsecure bool
	// MaxSize is the most bytes name=value may take. Default: 4096.
	MaxSize int
}

// Store is the encrypted-cookie store. It implements session.Store,
// session.TTLGetter and session.Toucher.
type Store struct {
	cfg   Config
	aeads []cipher.AEAD
	key   any // request user value: this store's response state
}

// state is what this response says about the data cookie.
type state struct {
	id      string
	data    []byte
	expires time.Time
	deleted bool
}

type stateKey struct{ s *Store }

// New validates cfg and returns a store.
func New(cfg Config) (*Store, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("cookiestore: at least one key is required")
	}
	s := &Store{}
	for i, k := range cfg.Keys {
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("cookiestore: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "session_data"
	}
	if cfg.CookiePath == "" {
		cfg.CookiePath = "/"
	}
	switch strings.ToLower(cfg.CookieSameSite) {
	case "", "lax", "strict", "none":
	default:
		return nil, fmt.Errorf("cookiestore: CookieSameSite %q is not Lax, Strict or None", cfg.CookieSameSite)
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 4096
	}
	s.cfg = cfg
	s.key = stateKey{s}
	return s, nil
}

// Get returns the record of id from this response's cookie if the request
// already wrote it, else from the request's cookie.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	data, _, err := s.GetTTL(ctx, id)
	return data, err
}

// GetTTL is Get with the record's remaining lifetime.
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	req, err := request(ctx)
	if err != nil {
		return nil, 0, err
	}
	st := s.current(req)
	if st == nil || st.deleted || st.id != id || !time.Now().Before(st.expires) {
		return nil, 0, session.ErrNotFound
	}
	return st.data, time.Until(st.expires), nil
}

// Set seals the record into the response's cookie. A write for an id other
// than the one this response already holds is the rotation grace copy of an
// old id, and is skipped: one browser keeps one cookie.
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	req, err := request(ctx)
	if err != nil {
		return err
	}
	if st, ok := req.UserValue(s.key).(*state); ok && !st.deleted && st.id != id {
		return nil
	}
	if len(id) > 255 {
		return fmt.Errorf("cookiestore: id of %d bytes is too long", len(id))
	}
	expires := time.Now().Add(ttl)
	value := s.seal(id, data, expires)
	if n := len(s.cfg.CookieName) + 1 + len(value); n > s.cfg.MaxSize {
		return fmt.Errorf("%w: a %d-byte record makes a %d-byte cookie, over the %d-byte limit", ErrTooLarge, len(data), n, s.cfg.MaxSize)
	}
	s.setCookie(req, value, ttl)
	req.SetUserValue(s.key, &state{id: id, data: data, expires: expires})
	return nil
}

// Touch re-seals the record with a new expiry.
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	data, err := s.Get(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.Set(ctx, id, data, ttl)
}

// Delete expires the cookie if it holds id.
func (s *Store) Delete(ctx context.Context, id string) error {
	req, err := request(ctx)
	if err != nil {
		return err
	}
	if st := s.current(req); st == nil || st.id != id || st.deleted {
		return nil
	}
	s.setCookie(req, "", -1)
	req.SetUserValue(s.key, &state{id: id, deleted: true})
	return nil
}

func request(ctx context.Context) (*fasthttp.RequestCtx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := session.RequestCtx(ctx)
	if req == nil {
		return nil, ErrNoRequest
	}
	return req, nil
}

// current returns what this response wrote, else what the request carried.
func (s *Store) current(req *fasthttp.RequestCtx) *state {
	if st, ok := req.UserValue(s.key).(*state); ok {
		return st
	}
	st, _ := s.open(req.Request.Header.Cookie(s.cfg.CookieName))
	return st
}

func (s *Store) seal(id string, data []byte, expires time.Time) string {
	aead := s.aeads[0]
	plain := make([]byte, 0, 8+1+len(id)+len(data))
	plain = binary.BigEndian.AppendUint64(plain, uint64(expires.UnixMilli()))
	plain = append(plain, byte(len(id)))
	plain = append(plain, id...)
	plain = append(plain, data...)
	sealed := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	_, _ = rand.Read(sealed)
	sealed = aead.Seal(sealed, sealed, plain, []byte(s.cfg.CookieName))
	return base64.RawURLEncoding.EncodeToString(sealed)
}

// open decrypts a cookie value with each key in turn. It never panics.
func (s *Store) open(value []byte) (*state, bool) {
	if len(value) == 0 || len(value) > 2*s.cfg.MaxSize {
		return nil, false
	}
	sealed := make([]byte, base64.RawURLEncoding.DecodedLen(len(value)))
	n, err := base64.RawURLEncoding.Decode(sealed, value)
	if err != nil {
		return nil, false
	}
	sealed = sealed[:n]
	for _, aead := range s.aeads {
		ns := aead.NonceSize()
		if len(sealed) < ns+aead.Overhead() {
			return nil, false
		}
		plain, err := aead.Open(nil, sealed[:ns], sealed[ns:], []byte(s.cfg.CookieName))
		if err != nil {
			continue
		}
		if len(plain) < 9 || len(plain) < 9+int(plain[8]) {
			return nil, false
		}
		idLen := int(plain[8])
		return &state{
			expires: time.UnixMilli(int64(binary.BigEndian.Uint64(plain))),
			id:      string(plain[9 : 9+idLen]),
			data:    plain[9+idLen:],
		}, true
	}
	return nil, false
}

func (s *Store) setCookie(req *fasthttp.RequestCtx, value string, ttl time.Duration) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(s.cfg.CookieName)
	c.SetValue(value)
	c.SetPath(s.cfg.CookiePath)
	c.SetDomain(s.cfg.CookieDomain)
	c.SetHTTPOnly(true)
	c.SetSecure(!s.cfg.CookieInsecure)
	switch strings.ToLower(s.cfg.CookieSameSite) {
	case "strict":
		c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	case "none":
		c.SetSameSite(fasthttp.CookieSameSiteNoneMode)
	default:
		c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	}
	if ttl < 0 {
		c.SetExpire(fasthttp.CookieExpireDelete)
	} else {
		c.SetMaxAge(int((ttl + time.Second - 1) / time.Second))
	}
	req.Response.Header.SetCookie(c)
	session.VaryCookie(&req.Response.Header)
}
