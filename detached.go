package session

import (
	"context"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"
)

// A detached session is one loaded outside the middleware, by Load, LoadID
// or LoadRequest: for a WebSocket connection, a token carried by another
// transport, a background job or an admin tool. It has the full API of a
// request's session, and Reload and Save work as there: a Save writes only
// what changed, merges with concurrent saves on a store with
// compare-and-set, and after Destroy deletes the record, so that later
// requests with its cookie get a fresh session. It has no HTTP response to
// carry a cookie: a Save after RegenerateID, or one that would start a new
// session (values set after Destroy, or after Reload found the record gone),
// fails with an error wrapping ErrDetached and writes nothing. Nothing saves
// it for you: call Save. Like every Session, it is not safe for use by
// several goroutines at once.

// Load returns the detached session named by token, a signed value of the
// session cookie (or Config.Header), verified as the middleware verifies it.
// A token that does not verify (malformed, forged, or signed with a key no
// longer in Config.Secrets) is ErrBadToken, and one naming no live session
// is ErrNotFound: never a fresh or adopted session. ctx bounds the read.
func (m *Manager[V, F]) Load(ctx context.Context, token string) (*Session[V, F], error) {
	id, _, ok := m.signer.verify([]byte(token))
	if !ok {
		return nil, ErrBadToken
	}
	return m.LoadID(ctx, id)
}

// LoadID returns the detached session stored under the raw id, or
// ErrNotFound. It verifies nothing: it is for trusted server code that
// holds ids from the store itself (Manager.Sessions, a job queue), never for
// an id a client sent, which must come signed through Load.
func (m *Manager[V, F]) LoadID(ctx context.Context, id string) (*Session[V, F], error) {
	if m.binder != nil {
		return nil, fmt.Errorf("%w: the store (%T) keeps each session in its request's cookie, so none can be loaded without the request", ErrUnsupported, m.cfg.Store)
	}
	s := &Session[V, F]{m: m, be: m.be}
	s.rec.vals = s.first[:0]
	if len(id) != idLen {
		return nil, ErrNotFound
	}
	s.client = id
	if err := s.read(ctx, s.client); err != nil {
		return nil, err
	}
	if !s.stored {
		return nil, ErrNotFound
	}
	return s, nil
}

// LoadRequest returns the session that the request's cookie (or
// Config.Header) names, verified as the middleware verifies it, detached
// from the request: for a connection that outlives the request's response,
// such as a WebSocket. It is ErrNotFound when the request names no live
// session. It does not need the middleware on the route.
func (m *Manager[V, F]) LoadRequest(ctx *fasthttp.RequestCtx) (*Session[V, F], error) {
	id, _, ok := m.token(ctx)
	if !ok {
		return nil, ErrNotFound
	}
	return m.LoadID(context.Background(), id)
}

// Destroy ends the session named by token, verified as Load verifies it (a
// token that does not verify is ErrBadToken): its record is deleted and it
// leaves its owner's index. A token naming no live session is not an error.
func (m *Manager[V, F]) Destroy(ctx context.Context, token string) error {
	id, _, ok := m.signer.verify([]byte(token))
	if !ok {
		return ErrBadToken
	}
	return m.DestroyID(ctx, id)
}

// DestroyID ends the session stored under the raw id, as Destroy does,
// without verifying anything: for trusted server code only (see LoadID).
func (m *Manager[V, F]) DestroyID(ctx context.Context, id string) error {
	s, err := m.LoadID(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	s.Destroy()
	return s.Save()
}

// SignedID returns the session's id signed with the newest secret: the
// value its cookie carries, which Load accepts. A session without an id gets
// one (see ID), though nothing is stored under it before a save.
func (s *Session[V, F]) SignedID() string { return s.m.signer.sign(s.ID()) }

// detached reports whether the session was loaded outside a request.
func (s *Session[V, F]) detached() bool { return s.req == nil }

// needsCookie reports whether saving the session would send a new id: after
// RegenerateID, or for a session that is not stored and has something to
// store.
func (s *Session[V, F]) needsCookie() bool {
	return !s.rot.readOnly && (s.rot.oldID != "" || !s.stored && s.kept())
}
