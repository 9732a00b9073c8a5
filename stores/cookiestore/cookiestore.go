// Package cookiestore keeps each session's whole record in the browser, in a
// cookie of its own encrypted and authenticated with AES-GCM. Nothing is
// stored on the server, so any number of app instances share sessions with no
// database.
//
// The session middleware still sets its signed id cookie; this store adds a
// second cookie (default name "session_data"), with the same Path, Domain,
// Secure and SameSite attributes and always HttpOnly, that holds
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
//   - It needs the session middleware, which binds it to each request (it is
//     a session.Binder): its own Get, Set and Delete, called outside a
//     request, fail with ErrNoRequest.
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
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/ttl"
)

// Errors returned by the store.
var (
	ErrTooLarge  = errors.New("cookiestore: record too large for a cookie")
	ErrNoRequest = errors.New("cookiestore: store call outside a request of the session middleware")
)

// Config configures the store. The data cookie takes its other attributes
// from the session middleware's cookie.
type Config struct {
	// Keys are AES keys of 16, 24 or 32 bytes: the first encrypts, all
	// decrypt. Required.
	Keys [][]byte
	// CookieName is the data cookie's name. Default: "session_data".
	CookieName string
	// MaxSize is the most bytes name=value may take. Default: 4096.
	MaxSize int
}

// Store is the encrypted-cookie store. It is a session.Binder: the
// middleware binds it to each request, and the Store that Bind returns
// implements session.TTLGetter and session.Toucher.
type Store struct {
	cfg   Config
	aeads []cipher.AEAD
}

var (
	_ session.Binder    = (*Store)(nil)
	_ session.TTLGetter = (*bound)(nil)
	_ session.Toucher   = (*bound)(nil)
)

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
			return nil, fmt.Errorf("cookiestore: key %d: %w", i, err)
		}
		s.aeads = append(s.aeads, aead)
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "session_data"
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 4096
	}
	s.cfg = cfg
	return s, nil
}

// Bind returns the store of one request: it reads the record from the
// request's data cookie and writes it to the response's, a cookie with the
// attributes of cookie (the session cookie), its own name, and HttpOnly.
func (s *Store) Bind(req *fasthttp.RequestCtx, cookie *fasthttp.Cookie) session.Store {
	b := &bound{s: s, req: req}
	b.cookie.CopyTo(cookie)
	b.cookie.SetKey(s.cfg.CookieName)
	b.cookie.SetHTTPOnly(true)
	return b
}

// Get fails with ErrNoRequest: records live in requests (see Bind).
func (s *Store) Get(context.Context, string) ([]byte, error) { return nil, ErrNoRequest }

// Set fails with ErrNoRequest: records live in requests (see Bind).
func (s *Store) Set(context.Context, string, []byte, time.Duration) error { return ErrNoRequest }

// Delete fails with ErrNoRequest: records live in requests (see Bind).
func (s *Store) Delete(context.Context, string) error { return ErrNoRequest }

// bound is the store of one request.
type bound struct {
	s      *Store
	req    *fasthttp.RequestCtx
	cookie fasthttp.Cookie // the data cookie's name and attributes
	cur    *record         // what the response or, before it wrote, the request holds
	opened bool            // the request's cookie was opened into cur
}

// record is a data cookie's content.
type record struct {
	id      string
	data    []byte
	expires time.Time
	deleted bool
}

// Get returns the record of id from this response's cookie if the request
// already wrote it, else from the request's cookie.
func (b *bound) Get(ctx context.Context, id string) ([]byte, error) {
	r, err := b.live(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.data, nil
}

// GetTTL is Get with the record's remaining lifetime.
func (b *bound) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	r, err := b.live(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return r.data, time.Until(r.expires), nil
}

// live returns the unexpired record of id, or session.ErrNotFound.
func (b *bound) live(ctx context.Context, id string) (*record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := b.current()
	if r == nil || r.deleted || r.id != id || !time.Now().Before(r.expires) {
		return nil, session.ErrNotFound
	}
	return r, nil
}

// Set seals the record into the response's cookie.
func (b *bound) Set(ctx context.Context, id string, data []byte, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(id) > 255 {
		return fmt.Errorf("cookiestore: id of %d bytes is too long", len(id))
	}
	expires := time.Now().Add(d)
	value := b.s.seal(id, data, expires)
	if n := len(b.s.cfg.CookieName) + 1 + len(value); n > b.s.cfg.MaxSize {
		return fmt.Errorf("%w: a %d-byte record makes a %d-byte cookie, over the %d-byte limit", ErrTooLarge, len(data), n, b.s.cfg.MaxSize)
	}
	b.cookie.SetExpire(fasthttp.CookieExpireUnlimited)
	b.cookie.SetMaxAge(int(ttl.Round(d, time.Second) / time.Second))
	b.send(value)
	b.cur = &record{id: id, data: data, expires: expires}
	return nil
}

// Touch re-seals the record with a new expiry.
func (b *bound) Touch(ctx context.Context, id string, d time.Duration) error {
	data, err := b.Get(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return b.Set(ctx, id, data, d)
}

// Delete expires the cookie if it holds id.
func (b *bound) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r := b.current(); r == nil || r.id != id || r.deleted {
		return nil
	}
	b.cookie.SetMaxAge(0)
	b.cookie.SetExpire(fasthttp.CookieExpireDelete)
	b.send("")
	b.cur = &record{id: id, deleted: true}
	return nil
}

// current returns what this response wrote, else what the request carried.
func (b *bound) current() *record {
	if b.cur == nil && !b.opened {
		b.cur, _ = b.s.open(b.req.Request.Header.Cookie(b.s.cfg.CookieName))
		b.opened = true
	}
	return b.cur
}

func (b *bound) send(value string) {
	b.cookie.SetValue(value)
	b.req.Response.Header.SetCookie(&b.cookie)
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
func (s *Store) open(value []byte) (*record, bool) {
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
		return &record{
			expires: time.UnixMilli(int64(binary.BigEndian.Uint64(plain))),
			id:      string(plain[9 : 9+idLen]),
			data:    plain[9+idLen:],
		}, true
	}
	return nil, false
}
