package natsstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/natsstore"
	"github.com/fibersession/session/stores/storetest"
)

// The store's capabilities, checked at compile time.
var _ interface {
	session.TTLGetter
	session.Toucher
	session.CompareAndSetter
} = (*natsstore.Store)(nil)

// newStore returns a store on kv configured by cfg, or fails t.
func newStore(t testing.TB, kv jetstream.KeyValue, cfg natsstore.Config) *natsstore.Store {
	t.Helper()
	st, err := natsstore.New(context.Background(), kv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The suite's longest TTL is 30 days; the bucket must allow it.
const suiteBucketTTL = 31 * 24 * time.Hour

func TestConformance(t *testing.T) {
	nc := connect(t, natsURL)
	kv := bucket(t, nc, suiteBucketTTL)
	// Expiries are kept in whole milliseconds, so a record may live up to
	// 1ms shorter than its TTL and GetTTL may read up to 1ms low.
	opts := storetest.Options{TTLGranularity: time.Millisecond}
	// The Close subtest is skipped: the store owns no resources (the
	// connection and the bucket are the caller's), so it has no Close.
	for _, tc := range []struct {
		name string
		cfg  natsstore.Config
	}{
		{"Default", natsstore.Config{}},
		// Every record over 1000 bytes is chunked: the 1 MiB value, the
		// shared-id writers' values, the large compare-and-set.
		{"SmallChunks", natsstore.Config{Prefix: "chunked.", ChunkSize: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t, kv, tc.cfg)
			storetest.Run(t, func(*testing.T) session.Store { return st }, opts)
		})
	}
}

// TestExpiredButStored pins the TTL mapping: a record past its own expiry is
// absent for the store while the bucket still holds it, and the bucket TTL
// removes it later.
func TestExpiredButStored(t *testing.T) {
	nc := connect(t, natsURL)
	kv := bucket(t, nc, time.Second)
	st := newStore(t, kv, natsstore.Config{})
	ctx := context.Background()
	const id = "expiring"
	if err := st.Set(ctx, id, []byte("short"), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, id); err != nil || string(got) != "short" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := st.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get after the record's ttl: %v, want ErrNotFound", err)
	}
	if _, err := kv.Get(ctx, id); err != nil {
		t.Fatalf("the bucket no longer holds the expired record (%v): the test cannot show the expiry check", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the bucket TTL (1s) did not remove the record within 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTTLLongerThanBucket(t *testing.T) {
	nc := connect(t, natsURL)
	kv := bucket(t, nc, time.Hour)
	st := newStore(t, kv, natsstore.Config{})
	ctx := context.Background()
	if err := st.Set(ctx, "fits", []byte("v"), time.Hour); err != nil {
		t.Fatalf("Set with the bucket's TTL: %v", err)
	}
	for name, op := range map[string]func() error{
		"Set": func() error { return st.Set(ctx, "long", []byte("v"), 2*time.Hour) },
		"CompareAndSet": func() error {
			_, err := st.CompareAndSet(ctx, "long", nil, []byte("v"), 2*time.Hour)
			return err
		},
		"Touch": func() error { return st.Touch(ctx, "fits", 2*time.Hour) },
	} {
		if err := op(); !errors.Is(err, natsstore.ErrTTLTooLong) {
			t.Errorf("%s with a ttl over the bucket's: %v, want ErrTTLTooLong", name, err)
		}
	}
	if _, err := st.Get(ctx, "long"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("a refused write was stored: %v", err)
	}
}

func TestConfig(t *testing.T) {
	nc := connect(t, natsURL)
	kv := bucket(t, nc, time.Hour)
	for _, tc := range []struct {
		cfg natsstore.Config
		ok  bool
	}{
		{natsstore.Config{}, true},
		{natsstore.Config{Prefix: "app.sessions."}, true},
		{natsstore.Config{Prefix: "a-b_c=d/e"}, true},
		{natsstore.Config{Prefix: ".leading"}, false},
		{natsstore.Config{Prefix: "double..dot"}, false},
		{natsstore.Config{Prefix: "wild*"}, false},
		{natsstore.Config{Prefix: "wild>"}, false},
		{natsstore.Config{Prefix: "with space"}, false},
		{natsstore.Config{ChunkSize: -1}, false},
	} {
		_, err := natsstore.New(context.Background(), kv, tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("New(%+v): error %v, want ok=%v", tc.cfg, err, tc.ok)
		}
	}
	if _, err := natsstore.New(context.Background(), nil, natsstore.Config{}); err == nil {
		t.Error("New(nil KeyValue) succeeded")
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := natsstore.New(canceled, kv, natsstore.Config{})
	const want = "natsstore: bucket status: "
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("New with a done context: %v; want an error starting %q that matches context.Canceled", err, want)
	}
}

func TestPrefixIsolation(t *testing.T) {
	nc := connect(t, natsURL)
	kv := bucket(t, nc, time.Hour)
	a := newStore(t, kv, natsstore.Config{Prefix: "a."})
	b := newStore(t, kv, natsstore.Config{Prefix: "b."})
	ctx := context.Background()
	const id = "same-id"
	if err := a.Set(ctx, id, []byte("from a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("store b sees store a's record: %v", err)
	}
	if ok, err := b.CompareAndSet(ctx, id, nil, []byte("from b"), time.Minute); err != nil || !ok {
		t.Fatalf("b.CompareAndSet(nil) = %v, %v", ok, err)
	}
	if err := b.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, id); err != nil || string(got) != "from a" {
		t.Fatalf("a.Get after b.Delete = %q, %v", got, err)
	}
	// Create over the purge marker Delete left.
	if ok, err := b.CompareAndSet(ctx, id, nil, []byte("again"), time.Minute); err != nil || !ok {
		t.Fatalf("b.CompareAndSet(nil) after b.Delete = %v, %v", ok, err)
	}
	if got, err := b.Get(ctx, id); err != nil || string(got) != "again" {
		t.Fatalf("b.Get = %q, %v", got, err)
	}
	if _, err := kv.Get(ctx, "a."+id); err != nil {
		t.Fatalf("key a.%s: %v", id, err)
	}
}

// sessionBucketTTL outlasts the middleware's default absolute timeout, as
// the bucket TTL must.
const sessionBucketTTL = 8 * 24 * time.Hour

// TestMiddleware runs the middleware-level checks with the default chunk
// size and with records split into many small chunks, each subtest under a
// key prefix of its own (its name), with a look at the prefixed key in the
// bucket and a value the store never writes under a session's key.
//
// With small chunks, ConcurrentKeys runs compare-and-set retry loops on
// chunked records, and no change may be lost. After every subtest, deleting
// the records it left must leave no chunk key behind: not those of a record
// that a compare-and-set replaced, nor those that a lost compare-and-set
// wrote. CorruptRecord is the exception: it replaces records with Set, which
// leaves the old chunks to the bucket TTL.
func TestMiddleware(t *testing.T) {
	kv := bucket(t, connect(t, natsURL), sessionBucketTTL)
	prefix := func(t *testing.T) string { return t.Name() + "." }
	opts := storetest.MiddlewareOptions{
		Stored: func(t *testing.T, id string) bool {
			_, err := kv.Get(context.Background(), prefix(t)+id)
			if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Fatal(err)
			}
			return err == nil
		},
		Corrupt: map[string]func(t *testing.T, id string){
			// Bytes the store did not write: no expiry header.
			"RawValue": func(t *testing.T, id string) {
				if _, err := kv.Put(context.Background(), prefix(t)+id, []byte("garbage")); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range []struct {
		name  string
		chunk int
	}{
		{"Default", 0},
		{"SmallChunks", 16}, // a signed-in session's record: about ten chunks
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.RunMiddleware(t, func(t *testing.T) session.Store {
				st := newStore(t, kv, natsstore.Config{Prefix: prefix(t), ChunkSize: tc.chunk})
				if !strings.Contains(t.Name(), "/CorruptRecord/") {
					t.Cleanup(func() { wantNoChunksLeft(t, kv, st, prefix(t)) })
				}
				return st
			}, opts)
		})
	}
}

// wantNoChunksLeft deletes through st every record under prefix, and then
// fails t if any key is left under prefix.
func wantNoChunksLeft(t *testing.T, kv jetstream.KeyValue, st *natsstore.Store, prefix string) {
	t.Helper()
	for _, key := range listKeys(t, kv, prefix) {
		// A record's key is prefix + id; a chunk's adds ".<chunk set>.<n>".
		if id := strings.TrimPrefix(key, prefix); !strings.Contains(id, ".") {
			if err := st.Delete(context.Background(), id); err != nil {
				t.Errorf("Delete(%s): %v", id, err)
			}
		}
	}
	// Owner index keys (prefix + "=owner.<owner>") are not chunks.
	left := slices.DeleteFunc(listKeys(t, kv, prefix), func(key string) bool {
		return strings.HasPrefix(key, prefix+"=owner.")
	})
	if len(left) > 0 {
		t.Errorf("%d chunk keys left once every record under %s was deleted, such as %q", len(left), prefix, left[:min(len(left), 3)])
	}
}

// listKeys returns the keys in kv that start with prefix. It lists them all
// and filters here: KeyValue.ListKeysFiltered is newer than the nats.go the
// module requires.
func listKeys(t *testing.T, kv jetstream.KeyValue, prefix string) []string {
	t.Helper()
	lister, err := kv.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for key := range lister.Keys() {
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	return keys
}

// TestSeveralInstances: two apps, each with its own connection and store,
// on one bucket.
func TestSeveralInstances(t *testing.T) {
	kv := bucket(t, connect(t, natsURL), sessionBucketTTL)
	storetest.RunSeveralInstances(t, func(t *testing.T) session.Store {
		js, err := jetstream.New(connect(t, natsURL))
		if err != nil {
			t.Fatal(err)
		}
		own, err := js.KeyValue(context.Background(), kv.Bucket())
		if err != nil {
			t.Fatal(err)
		}
		return newStore(t, own, natsstore.Config{})
	})
}
