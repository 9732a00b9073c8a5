package session

import (
	"context"
	"errors"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

// The kinds of Event. Their String values are stable, for metric labels.
const (
	// EventCreated: a new session was stored for the first time.
	EventCreated EventKind = iota + 1
	// EventRotated: RegenerateID moved a session to a new id.
	EventRotated
	// EventDestroyed: Destroy ended a session, and its record was deleted.
	EventDestroyed
	// EventOwnerSignedOut: DestroyOwner or DestroyOthers ended Count sessions of
	// Owner.
	EventOwnerSignedOut
	// EventDecodeFailed: a stored record, or one of its values, did not decode
	// (Err); the session started fresh, or the value read as absent.
	EventDecodeFailed
	// EventStoreError: a store call (Op) failed with Err after Duration.
	EventStoreError
	// EventStoreCall: a store call (Op) returned after Duration, failed or not.
	EventStoreCall
)

var eventNames = [...]string{"", "created", "rotated", "destroyed", "owner_signed_out", "decode_failed", "store_error", "store_call"}

// String returns the kind's stable name: "created", "rotated", "destroyed",
// "owner_signed_out", "decode_failed", "store_error" or "store_call".
func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event is what Config.OnEvent receives. Only the fields its Kind names are
// set. It never holds a session id, a value or a secret.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Op is the store operation of StoreCall and StoreError: "get", "set",
	// "cas" (compare-and-set), "touch" or "delete".
	Op string
	// Duration is how long the store call took.
	Duration time.Duration
	// Err is the error of StoreError and DecodeFailed, and of a StoreCall
	// that failed (ErrNotFound is not a failure: it is nil there).
	Err error
	// Owner is the owner of EventOwnerSignedOut.
	Owner string
	// Count is the number of sessions EventOwnerSignedOut ended.
	Count int
}

// emit passes e to Config.OnEvent, if set.
func (m *Manager[V, F]) emit(e Event) {
	if m.cfg.OnEvent != nil {
		m.cfg.OnEvent(e)
	}
}

// observe makes b's store calls report StoreCall and StoreError events to
// emit; the capabilities b has stay the ones it has.
func (b *backend) observe(emit func(Event)) {
	t := timer{emit}
	b.Store = timedStore{b.Store, t}
	if b.ttl != nil {
		b.ttl = timedTTL{b.ttl, t}
	}
	if b.touch != nil {
		b.touch = timedTouch{b.touch, t}
	}
	if b.cas != nil {
		b.cas = timedCAS{b.cas, t}
	}
}

type timer struct{ emit func(Event) }

// done reports a store call op that began at start and returned err.
func (t timer) done(op string, start time.Time, err error) {
	d := time.Since(start)
	if errors.Is(err, ErrNotFound) {
		err = nil
	}
	t.emit(Event{Kind: EventStoreCall, Op: op, Duration: d, Err: err})
	if err != nil {
		t.emit(Event{Kind: EventStoreError, Op: op, Duration: d, Err: err})
	}
}

type timedStore struct {
	Store
	t timer
}

func (s timedStore) Get(ctx context.Context, id string) ([]byte, error) {
	start := time.Now()
	data, err := s.Store.Get(ctx, id)
	s.t.done("get", start, err)
	return data, err
}

func (s timedStore) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.Set(ctx, id, data, ttl)
	s.t.done("set", start, err)
	return err
}

func (s timedStore) Delete(ctx context.Context, id string) error {
	start := time.Now()
	err := s.Store.Delete(ctx, id)
	s.t.done("delete", start, err)
	return err
}

type timedTTL struct {
	TTLGetter
	t timer
}

func (s timedTTL) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	start := time.Now()
	data, ttl, err := s.TTLGetter.GetTTL(ctx, id)
	s.t.done("get", start, err)
	return data, ttl, err
}

type timedTouch struct {
	Toucher
	t timer
}

func (s timedTouch) Touch(ctx context.Context, id string, ttl time.Duration) error {
	start := time.Now()
	err := s.Toucher.Touch(ctx, id, ttl)
	s.t.done("touch", start, err)
	return err
}

type timedCAS struct {
	CompareAndSetter
	t timer
}

func (s timedCAS) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := s.CompareAndSetter.CompareAndSet(ctx, id, old, data, ttl)
	s.t.done("cas", start, err)
	return ok, err
}
