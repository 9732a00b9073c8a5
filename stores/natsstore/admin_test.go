package natsstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/natsstore"
	"github.com/fibersession/session/stores/storetest"
)

// The administration capabilities, checked at compile time.
var _ interface {
	session.Scanner
	session.Counter
	session.Clearer
	session.OwnerIndex
} = (*natsstore.Store)(nil)

// fill writes n records to st with ids "<tag><i>" from 32 goroutines, and
// returns them by id. Every 1000th record is longer than chunk bytes (when
// chunk > 0), the rest are short and binary.
func fill(t *testing.T, st *natsstore.Store, tag string, n, chunk int) map[string][]byte {
	t.Helper()
	want := make(map[string][]byte, n)
	for i := range n {
		id := fmt.Sprintf("%s%d", tag, i)
		data := append([]byte{byte(i), 0, 0xff}, id...)
		if chunk > 0 && i%1000 == 0 {
			data = bytes.Repeat(data, 3*chunk/len(data)+1)
		}
		want[id] = data
	}
	ids := make(chan string)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if err := st.Set(context.Background(), id, want[id], time.Hour); err != nil {
					select {
					case errs <- fmt.Errorf("Set(%s): %w", id, err):
					default:
					}
				}
			}
		}()
	}
	for id := range want {
		ids <- id
	}
	close(ids)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	return want
}

// scanAll returns what st.Scan reports, failing t on an error or on an id
// reported twice (no record is written during these scans).
func scanAll(t *testing.T, st *natsstore.Store) map[string][]byte {
	t.Helper()
	got := make(map[string][]byte)
	err := st.Scan(context.Background(), func(id string, data []byte) error {
		if _, dup := got[id]; dup {
			t.Errorf("Scan reported %q twice", id)
		}
		got[id] = bytes.Clone(data)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return got
}

// wantRecords fails t unless got holds exactly want.
func wantRecords(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	bad := 0
	for id, data := range want {
		if g, ok := got[id]; !ok || !bytes.Equal(g, data) {
			if bad++; bad <= 3 {
				t.Errorf("%s: %q: got %q (reported: %v), want %q", what, id, shorten(g), ok, shorten(data))
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			if bad++; bad <= 3 {
				t.Errorf("%s: reported %q, which is not one of the store's records", what, id)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d wrong of %d reported, %d wanted", what, bad, len(got), len(want))
	}
}

func shorten(b []byte) []byte { return b[:min(len(b), 40)] }

func wantCount(t *testing.T, name string, st *natsstore.Store, want int) {
	t.Helper()
	if n, err := st.Count(context.Background()); err != nil || n != want {
		t.Errorf("%s.Count = %d, %v; want %d", name, n, err, want)
	}
}

func wantOwned(t *testing.T, st *natsstore.Store, owner string, want ...string) {
	t.Helper()
	got, err := st.Owned(context.Background(), owner)
	if err != nil {
		t.Fatalf("Owned(%q): %v", owner, err)
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Owned(%q) = %q, want %q", owner, got, want)
	}
}

func allKeys(t *testing.T, kv jetstream.KeyValue) []string {
	t.Helper()
	keys := listKeys(t, kv, "")
	slices.Sort(keys)
	return keys
}

// TestAdmin: three stores share a bucket, under the prefixes "a.", "" and
// "a.b.", each a prefix of another's keys (RunAdmin's namespaces are
// apart). Each lists, counts and clears its own records, chunks and owner
// index and nothing of the others', key by key.
func TestAdmin(t *testing.T) {
	kv := bucket(t, connect(t, natsURL), sessionBucketTTL)
	ctx := context.Background()
	const chunk = 100
	a := newStore(t, kv, natsstore.Config{Prefix: "a.", ChunkSize: chunk})
	b := newStore(t, kv, natsstore.Config{ChunkSize: chunk})
	c := newStore(t, kv, natsstore.Config{Prefix: "a.b.", ChunkSize: chunk})

	const n = 2001 // three chunked
	wantA := fill(t, a, "s", n, chunk)
	// b's ids name a's prefix's first token and a chunk-like key of
	// b: "a" is b's, and its chunks a.<set>.<n> are b's, not a's.
	wantB := fill(t, b, "b", 5, chunk)
	for _, id := range []string{"a", "x"} {
		data := bytes.Repeat([]byte(id), 3*chunk)
		if err := b.Set(ctx, id, data, time.Hour); err != nil {
			t.Fatal(err)
		}
		wantB[id] = data
	}
	wantC := fill(t, c, "c", 1001, chunk)
	for _, st := range []*natsstore.Store{a, b, c} {
		for _, owner := range []string{"alice", "bob"} {
			if err := st.Own(ctx, owner, "s1", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}

	wantRecords(t, "a.Scan", scanAll(t, a), wantA)
	wantRecords(t, "b.Scan", scanAll(t, b), wantB)
	wantRecords(t, "c.Scan", scanAll(t, c), wantC)
	wantCount(t, "a", a, n)
	wantCount(t, "b", b, len(wantB))
	wantCount(t, "c", c, len(wantC))

	before := allKeys(t, kv)
	if err := a.Clear(ctx); err != nil {
		t.Fatalf("a.Clear: %v", err)
	}
	wantCount(t, "a", a, 0)
	wantRecords(t, "a.Scan after a.Clear", scanAll(t, a), nil)
	wantOwned(t, a, "alice")
	var kept []string // the keys not a's: b's (no '.', or 3 tokens: a's chunks) and c's
	for _, key := range before {
		if !strings.HasPrefix(key, "a.") || strings.HasPrefix(key, "a.b.") || strings.Count(key, ".") == 2 && !strings.HasPrefix(key, "a.=owner.") {
			kept = append(kept, key)
		}
	}
	if after := allKeys(t, kv); !slices.Equal(after, kept) {
		t.Errorf("a.Clear left %d keys, want the %d keys of the other stores\nleft: %.300q\nwant: %.300q", len(after), len(kept), after, kept)
	}
	wantRecords(t, "b.Scan after a.Clear", scanAll(t, b), wantB)
	wantRecords(t, "c.Scan after a.Clear", scanAll(t, c), wantC)
	wantOwned(t, b, "alice", "s1")
	wantOwned(t, c, "alice", "s1")

	if err := b.Clear(ctx); err != nil {
		t.Fatalf("b.Clear: %v", err)
	}
	wantCount(t, "b", b, 0)
	wantOwned(t, b, "bob")
	for _, key := range allKeys(t, kv) {
		if !strings.HasPrefix(key, "a.b.") {
			t.Errorf("b.Clear left %q", key)
		}
	}
	wantRecords(t, "c.Scan after b.Clear", scanAll(t, c), wantC)
	wantCount(t, "c", c, len(wantC))
	wantOwned(t, c, "bob", "s1")

	if err := c.Clear(ctx); err != nil {
		t.Fatalf("c.Clear: %v", err)
	}
	if left := allKeys(t, kv); len(left) > 0 {
		t.Errorf("keys left once every store cleared: %.300q", left)
	}
}

// TestAdminSeparateBuckets: Clear leaves another bucket alone, also the
// keys there that are the same as those it purges (RunAdmin's
// BucketChunked namespaces hold other keys).
func TestAdminSeparateBuckets(t *testing.T) {
	nc := connect(t, natsURL)
	a := newStore(t, bucket(t, nc, time.Hour), natsstore.Config{})
	b := newStore(t, bucket(t, nc, time.Hour), natsstore.Config{})
	ctx := context.Background()
	for _, st := range []*natsstore.Store{a, b} {
		if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := st.Own(ctx, "o", "id", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	wantCount(t, "a", a, 0)
	wantOwned(t, a, "o")
	wantCount(t, "b", b, 1)
	wantOwned(t, b, "o", "id")
}

// TestScanSkips: expired records, values the store did not write and the
// owner index are neither reported nor counted.
func TestScanSkips(t *testing.T) {
	kv := bucket(t, connect(t, natsURL), time.Hour)
	ctx := context.Background()
	for _, prefix := range []string{"", "p.", "p_"} {
		t.Run("Prefix="+prefix, func(t *testing.T) {
			st := newStore(t, kv, natsstore.Config{Prefix: prefix, ChunkSize: 10})
			want := map[string][]byte{"live": []byte("v"), "chunked": bytes.Repeat([]byte("0123456789"), 5)}
			for id, data := range want {
				if err := st.Set(ctx, id, data, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range []string{"short", "shortchunked"} {
				if err := st.Set(ctx, id, []byte("expires at once, chunked or not"[:len(id)*2]), 10*time.Millisecond); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := kv.Put(ctx, prefix+"garbage", []byte("not a record")); err != nil {
				t.Fatal(err)
			}
			if err := st.Own(ctx, "owner", "live", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			// The bucket keeps the expired records: the store's clock
			// hides them.
			for _, id := range []string{"short", "shortchunked"} {
				for {
					if _, err := st.Get(ctx, id); errors.Is(err, session.ErrNotFound) {
						break
					} else if err != nil {
						t.Fatal(err)
					}
					time.Sleep(5 * time.Millisecond)
				}
				if _, err := kv.Get(ctx, prefix+id); err != nil {
					t.Fatalf("the bucket no longer holds %s: %v", id, err)
				}
			}
			wantRecords(t, "Scan", scanAll(t, st), want)
			wantCount(t, "st", st, len(want))
		})
	}
}

// TestScanStops: Scan returns fn's error as it is (RunAdmin checks that
// it stops); a context that fn cancels stops Scan; a done context fails
// every administration and index method, before any I/O, with an error
// naming it.
func TestScanStops(t *testing.T) {
	kv := bucket(t, connect(t, natsURL), time.Hour)
	st := newStore(t, kv, natsstore.Config{})
	fill(t, st, "s", 100, 0)
	ctx := context.Background()

	errStop := errors.New("stop")
	if err := st.Scan(ctx, func(string, []byte) error { return errStop }); err != errStop {
		t.Errorf("Scan whose fn fails = %v, want fn's error as it is", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	calls := 0
	err := st.Scan(cctx, func(string, []byte) error {
		if calls++; calls == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "natsstore: scan: ") || calls != 3 {
		t.Errorf("Scan whose context is canceled by fn: %v after %d calls, want natsstore: scan: ... context canceled after 3", err, calls)
	}

	for name, op := range map[string]func(context.Context) error{
		"scan":   func(ctx context.Context) error { return st.Scan(ctx, func(string, []byte) error { return nil }) },
		"count":  func(ctx context.Context) error { _, err := st.Count(ctx); return err },
		"clear":  func(ctx context.Context) error { return st.Clear(ctx) },
		"own":    func(ctx context.Context) error { return st.Own(ctx, "o", "s1", time.Now().Add(time.Hour)) },
		"disown": func(ctx context.Context) error { return st.Disown(ctx, "o", "s1") },
		"owned":  func(ctx context.Context) error { _, err := st.Owned(ctx, "o"); return err },
	} {
		err := op(cctx)
		if want := "natsstore: " + name; !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s with a canceled context: %v, want an error starting %q matching context.Canceled", name, err, want)
		}
	}
	wantCount(t, "st", st, 100)
}

// TestScanStalled: with a context without a deadline, Scan fails once the
// server has said nothing for 5s, rather than waiting for ever.
func TestScanStalled(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 5s")
	}
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	kv := bucket(t, connect(t, natsURL), time.Hour)
	proxy := storetest.NewProxy(t, u.Host)
	_, st := proxied(t, kv, proxy.Addr())
	fill(t, st, "s", 10, 0)
	proxy.Freeze()
	defer proxy.Thaw()
	start := time.Now()
	err = st.Scan(context.Background(), func(string, []byte) error { return nil })
	d := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "natsstore: scan: ") {
		t.Errorf("Scan through a frozen connection: %v, want natsstore: scan: ... context deadline exceeded", err)
	}
	if d < 5*time.Second || d > 7*time.Second {
		t.Errorf("Scan through a frozen connection failed after %v, want 5s", d)
	}
}

// TestOwner checks what RunAdmin does not of the owner index: Owned leaves
// out an entry past its time while the owner's key still holds it, and the
// next Own removes it; owners written as subjects' wildcards, the empty
// owner and a long one; the bucket's TTL as a bound; ids of any bytes; an
// owner's key gone with its last entry, and Disowns that write nothing.
func TestOwner(t *testing.T) {
	kv := bucket(t, connect(t, natsURL), time.Hour)
	st := newStore(t, kv, natsstore.Config{Prefix: "p."})
	ctx := context.Background()
	hour := time.Now().Add(time.Hour)
	ownerKey := func(owner string) string { return "p.=owner." + base64.RawURLEncoding.EncodeToString([]byte(owner)) }

	t.Run("Past", func(t *testing.T) {
		soon := time.Now().Add(50 * time.Millisecond)
		if err := st.Own(ctx, "u2", "old", soon); err != nil {
			t.Fatal(err)
		}
		if err := st.Own(ctx, "u2", "live", hour); err != nil {
			t.Fatal(err)
		}
		wantOwned(t, st, "u2", "old", "live")
		time.Sleep(time.Until(soon) + time.Millisecond) // the entry's time passes
		wantOwned(t, st, "u2", "live")
		// The owner's key holds the entries (see the package documentation).
		stored := func() []byte {
			t.Helper()
			e, err := kv.Get(ctx, ownerKey("u2"))
			if err != nil {
				t.Fatal(err)
			}
			return e.Value()
		}
		if !bytes.Contains(stored(), []byte("old")) {
			t.Fatalf("the entry past its time is gone before the next Own (%q): the test cannot show Own removing it", stored())
		}
		if err := st.Own(ctx, "u2", "new", hour); err != nil {
			t.Fatal(err)
		}
		if v := stored(); bytes.Contains(v, []byte("old")) {
			t.Errorf("the owner's key after the owner's next Own holds %q, want the entry past its time gone", v)
		}
		wantOwned(t, st, "u2", "live", "new")
		// An entry whose time has passed already is removed at once.
		if err := st.Own(ctx, "u2", "live", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		wantOwned(t, st, "u2", "new")
	})

	t.Run("Owners", func(t *testing.T) {
		// The empty owner's key ends in "=", and "=" is written in
		// base64url: they stay apart too.
		owners := []string{"a", "*", ">", "a.>", "", "=", strings.Repeat("long", 100)}
		for i, owner := range owners {
			if err := st.Own(ctx, owner, fmt.Sprintf("only%d", i), hour); err != nil {
				t.Fatalf("Own(%q): %v", owner, err)
			}
		}
		for i, owner := range owners {
			wantOwned(t, st, owner, fmt.Sprintf("only%d", i))
		}
	})

	t.Run("TTLTooLong", func(t *testing.T) {
		err := st.Own(ctx, "u4", "s1", time.Now().Add(2*time.Hour))
		if !errors.Is(err, natsstore.ErrTTLTooLong) {
			t.Errorf("Own past the bucket's TTL: %v, want ErrTTLTooLong", err)
		}
		wantOwned(t, st, "u4")
	})

	t.Run("Ids", func(t *testing.T) {
		// Ids are kept in the value: any string will do.
		odd := []string{"id with space", "a.b", "*", ">", "\x00\xff", ""}
		for _, id := range odd {
			if err := st.Own(ctx, "u5", id, hour); err != nil {
				t.Fatal(err)
			}
		}
		wantOwned(t, st, "u5", odd...)
		rev := func() uint64 {
			t.Helper()
			e, err := kv.Get(ctx, ownerKey("u5"))
			if err != nil {
				t.Fatal(err)
			}
			return e.Revision()
		}
		// A Disown of no ids, or of ids the owner does not have, writes
		// nothing.
		before := rev()
		if err := st.Disown(ctx, "u5"); err != nil {
			t.Fatal(err)
		}
		if err := st.Disown(ctx, "u5", "never", "not a key*"); err != nil {
			t.Fatal(err)
		}
		if after := rev(); after != before {
			t.Errorf("a Disown that removes nothing wrote the owner's key: revision %d, was %d", after, before)
		}
		wantOwned(t, st, "u5", odd...)
		// Disowning the last entry removes the owner's key; a Disown
		// of an owner without entries writes nothing.
		if err := st.Disown(ctx, "u5", odd...); err != nil {
			t.Fatal(err)
		}
		wantOwned(t, st, "u5")
		if _, err := kv.Get(ctx, ownerKey("u5")); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("the key of an owner without entries: %v, want it purged", err)
		}
		if err := st.Disown(ctx, "nobody", "x"); err != nil {
			t.Fatal(err)
		}
		if h, err := kv.History(ctx, ownerKey("nobody")); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("Disown of an owner without entries wrote the owner's key: history %v, %v", h, err)
		}
	})
}

// TestAdminConformance runs the shared administration checks with each
// namespace a key prefix in one shared bucket, and with each namespace a
// bucket of its own whose records are chunked (ChunkSize 1000: the listing
// subtests' 2 KiB records take three chunks each, so 2,000 of them, not
// 10,000, keep the run short). The tests above check only what is the NATS
// store's own: prefixes that are prefixes of one another in one bucket,
// values it did not write, expired records the bucket still holds,
// canceled and stalled scans, and the owner keys.
func TestAdminConformance(t *testing.T) {
	nc := connect(t, natsURL)
	shared := bucket(t, nc, sessionBucketTTL)
	opts := storetest.AdminOptions{TTLGranularity: time.Millisecond}
	t.Run("Prefix", func(t *testing.T) {
		storetest.RunAdmin(t, func(t *testing.T, namespace string) session.Store {
			return newStore(t, shared, natsstore.Config{Prefix: namespace + "."})
		}, opts)
	})
	t.Run("BucketChunked", func(t *testing.T) {
		opts := opts
		opts.Sessions = 2000
		storetest.RunAdmin(t, func(t *testing.T, _ string) session.Store {
			return newStore(t, bucket(t, nc, sessionBucketTTL), natsstore.Config{ChunkSize: 1000})
		}, opts)
	})
}
