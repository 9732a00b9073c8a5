package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
)

// AdminOptions tunes RunAdmin.
type AdminOptions struct {
	// Sessions is how many records the listing subtests write. Default:
	// 10,000.
	Sessions int
	// TTLGranularity is as in Options.
	TTLGranularity time.Duration
}

// RunAdmin checks the administration capabilities of a store,
// session.Scanner, session.Counter and session.Clearer, and its owner index,
// session.OwnerIndex; a capability the store lacks is a skipped subtest.
//
// newStore returns a store that keeps its records within namespace: its own
// key prefix, table or bucket, apart from every other namespace's, and empty
// when first used. RunAdmin makes each namespace of random lowercase letters
// and digits (12 at most, a letter first), so test binaries sharing a server
// do not meet; newStore may use it as a name or part of one, and should
// remove what it creates with t.Cleanup.
//
//   - Scan: Sessions records are each reported with their bytes (at least
//     once), no other id is; the records are never all in memory at once
//     (the heap live during the scan stays below half their size); an
//     error from fn stops the scan and is returned; fn may delete records.
//   - Expired: records past their time to live are not reported.
//   - Count: Sessions records count Sessions.
//   - Clear: every record and index entry of the namespace goes, another
//     namespace's stay, and the store works afterwards.
//   - Owners: Own, Owned and Disown round trips (Disown of nothing, of
//     everything, of an unknown owner); entries past their time are not
//     returned, before and after the owner's next Own, nor are those that Own
//     gives a time already past; 100 concurrent Own of one owner all land; owners
//     that look alike ("a" and "a.b", "a*", case, spaces, bytes) stay apart;
//     index entries are neither scanned nor counted.
//
// At most one AdminOptions value may be passed.
func RunAdmin(t *testing.T, newStore func(t *testing.T, namespace string) session.Store, opts ...AdminOptions) {
	t.Helper()
	if len(opts) > 1 {
		t.Fatal("storetest.RunAdmin: at most one AdminOptions value")
	}
	a := &admin{newStore: newStore, n: 10000}
	if len(opts) == 1 {
		a.gran = opts[0].TTLGranularity
		if opts[0].Sessions > 0 {
			a.n = opts[0].Sessions
		}
	}
	t.Run("Scan", a.testScan)
	t.Run("Expired", a.testExpired)
	t.Run("Count", a.testCount)
	t.Run("Clear", a.testClear)
	t.Run("Owners", a.testOwners)
}

type admin struct {
	newStore func(t *testing.T, namespace string) session.Store
	n        int
	gran     time.Duration
}

// store returns a store over a new namespace, skipping the test unless it
// has the capability of type C.
func store[C any](t *testing.T, a *admin) (session.Store, C) {
	t.Helper()
	st := a.newStore(t, namespace(t))
	c, ok := st.(C)
	if !ok {
		var zero C
		t.Skipf("%T is not a %T", st, &zero)
	}
	return st, c
}

func namespace(t *testing.T) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := randBytes(t, 12)
	for i := range b {
		if i == 0 {
			b[i] = letters[int(b[i])%len(letters)]
		} else {
			b[i] = (letters + "0123456789")[int(b[i])%36]
		}
	}
	return string(b)
}

// fill writes n records of size bytes each (random) under new ids, with 16
// writers, and returns each id's record's hash.
func fill(t *testing.T, st session.Store, n, size int, ttl time.Duration) map[string][32]byte {
	t.Helper()
	want := make(map[string][32]byte, n)
	ids := make([]string, n)
	data := make([][]byte, n)
	for i := range ids {
		ids[i], data[i] = newID(t), randBytes(t, size)
		want[ids[i]] = sha256.Sum256(data[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if err := st.Set(ctx, ids[i], data[i], ttl); err != nil {
					errs <- fmt.Errorf("Set: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return want
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func (a *admin) testScan(t *testing.T) {
	st, sc := store[session.Scanner](t, a)
	const size = 2048
	want := fill(t, st, a.n, size, longTTL)

	base := liveHeap()
	var peak uint64
	seen := make(map[string]bool, a.n)
	err := sc.Scan(ctx, func(id string, data []byte) error {
		h, ok := want[id]
		switch {
		case !ok:
			return fmt.Errorf("Scan reported id %q, which the test never wrote", id)
		case sha256.Sum256(data) != h:
			return fmt.Errorf("Scan reported id %q with other bytes than were written: %s", id, describe(data))
		}
		seen[id] = true
		if len(seen)%(a.n/10+1) == 0 {
			if h := liveHeap(); h > base {
				peak = max(peak, h-base)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(seen) != a.n {
		t.Fatalf("Scan reported %d of the %d records", len(seen), a.n)
	}
	t.Logf("the live heap grew by at most %d bytes during a scan of %d bytes of records", peak, a.n*size)
	if total := uint64(a.n * size); peak > total/2 {
		t.Errorf("the live heap grew by %d bytes during a scan of %d bytes of records: the scan does not stream", peak, total)
	}

	stop := errors.New("stop")
	calls := 0
	err = sc.Scan(ctx, func(string, []byte) error {
		calls++
		if calls == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 10 {
		t.Errorf("Scan whose fn fails at the 10th record: %d calls, error %v; want 10 calls and fn's error", calls, err)
	}

	// fn may call the store: delete every record while scanning.
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = sc.Scan(c, func(id string, _ []byte) error { return st.Delete(c, id) })
	if err != nil {
		t.Fatalf("Scan deleting each record: %v", err)
	}
	left := 0
	if err := sc.Scan(ctx, func(string, []byte) error { left++; return nil }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if left != 0 {
		t.Errorf("after a scan that deleted every record, %d are left", left)
	}
}

func (a *admin) testExpired(t *testing.T) {
	st, sc := store[session.Scanner](t, a)
	live := fill(t, st, 20, 64, longTTL)
	short := time.Second + a.gran
	dead := fill(t, st, 20, 64, short)
	for id := range dead { // wait until the store says they are gone
		deadline := time.Now().Add(short + a.gran + 10*margin)
		for {
			_, err := st.Get(ctx, id)
			if errors.Is(err, session.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a record with TTL %v is still there after %v: %v", short, short+a.gran+10*margin, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	got := 0
	err := sc.Scan(ctx, func(id string, _ []byte) error {
		if _, ok := dead[id]; ok {
			return fmt.Errorf("Scan reported an expired record")
		}
		got++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(live) {
		t.Errorf("Scan reported %d records, want the %d live ones", got, len(live))
	}
}

func (a *admin) testCount(t *testing.T) {
	st, c := store[session.Counter](t, a)
	if n, err := c.Count(ctx); err != nil || n != 0 {
		t.Fatalf("Count of an empty namespace = %d, %v; want 0", n, err)
	}
	fill(t, st, a.n, 32, longTTL)
	if n, err := c.Count(ctx); err != nil || n != a.n {
		t.Fatalf("Count = %d, %v; want %d", n, err, a.n)
	}
}

func (a *admin) testClear(t *testing.T) {
	st, cl := store[session.Clearer](t, a)
	other := a.newStore(t, namespace(t))
	mine := fill(t, st, 200, 32, longTTL)
	theirs := fill(t, other, 200, 32, longTTL)
	idx, owners := st.(session.OwnerIndex)
	oidx, _ := other.(session.OwnerIndex)
	if owners {
		for id := range mine {
			own(t, idx, "user-1", id)
		}
		for id := range theirs {
			own(t, oidx, "user-1", id)
		}
	}
	if err := cl.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	for id := range mine {
		if _, err := st.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("after Clear, Get of a record = %v, want ErrNotFound", err)
		}
	}
	for id := range theirs {
		if _, err := other.Get(ctx, id); err != nil {
			t.Fatalf("Clear of one namespace lost a record of another: %v", err)
		}
	}
	if c, ok := st.(session.Counter); ok {
		if n, err := c.Count(ctx); err != nil || n != 0 {
			t.Errorf("after Clear, Count = %d, %v; want 0", n, err)
		}
	}
	// The store works after Clear.
	again := newID(t)
	if err := st.Set(ctx, again, []byte("again"), longTTL); err != nil {
		t.Fatalf("Set after Clear: %v", err)
	}
	if data, err := st.Get(ctx, again); err != nil || string(data) != "again" {
		t.Fatalf("Get after Clear = %q, %v", data, err)
	}
	if owners {
		own(t, idx, "user-2", again)
		if got := owned(t, idx, "user-2"); !slices.Equal(got, []string{again}) {
			t.Errorf("Owned after Clear and Own = %q", got)
		}
	}
	if owners {
		if ids := owned(t, idx, "user-1"); len(ids) != 0 {
			t.Errorf("after Clear, the owner index still holds %d ids", len(ids))
		}
		if ids := owned(t, oidx, "user-1"); len(ids) != len(theirs) {
			t.Errorf("Clear of one namespace left %d of another's %d index entries", len(ids), len(theirs))
		}
	}
}

func own(t *testing.T, idx session.OwnerIndex, owner, id string) {
	t.Helper()
	if err := idx.Own(ctx, owner, id, time.Now().Add(longTTL)); err != nil {
		t.Fatalf("Own: %v", err)
	}
}

func owned(t *testing.T, idx session.OwnerIndex, owner string) []string {
	t.Helper()
	ids, err := idx.Owned(ctx, owner)
	if err != nil {
		t.Fatalf("Owned(%q): %v", owner, err)
	}
	slices.Sort(ids)
	return ids
}

func (a *admin) testOwners(t *testing.T) {
	st, idx := store[session.OwnerIndex](t, a)

	id1, id2, id3 := newID(t), newID(t), newID(t)
	own(t, idx, "user-1", id1)
	own(t, idx, "user-1", id2)
	own(t, idx, "user-1", id2) // again: still one entry
	want := []string{id1, id2}
	slices.Sort(want)
	if got := owned(t, idx, "user-1"); !slices.Equal(got, want) {
		t.Fatalf("Owned = %q, want %q", got, want)
	}
	if err := idx.Disown(ctx, "user-1", id1, id3); err != nil {
		t.Fatalf("Disown: %v", err)
	}
	if got := owned(t, idx, "user-1"); !slices.Equal(got, []string{id2}) {
		t.Fatalf("after Disown, Owned = %q, want %q", got, []string{id2})
	}
	for _, ids := range [][]string{nil, {id2}, {id2}} { // nothing, the last one, then again
		if err := idx.Disown(ctx, "user-1", ids...); err != nil {
			t.Fatalf("Disown(%q): %v", ids, err)
		}
	}
	if err := idx.Disown(ctx, "nobody", id1); err != nil {
		t.Fatalf("Disown of an unknown owner: %v", err)
	}
	if got := owned(t, idx, "user-1"); len(got) != 0 {
		t.Fatalf("after disowning every id, Owned = %q", got)
	}

	// An entry past its time is not returned.
	past := newID(t)
	soon := time.Now().Add(time.Second + a.gran)
	if err := idx.Own(ctx, "user-2", past, soon); err != nil {
		t.Fatal(err)
	}
	if got := owned(t, idx, "user-2"); !slices.Equal(got, []string{past}) {
		t.Fatalf("Owned before the entry's time = %q", got)
	}
	time.Sleep(time.Until(soon) + a.gran + margin)
	if got := owned(t, idx, "user-2"); len(got) != 0 { // before any Own prunes it
		t.Errorf("Owned after the entry's time passed = %q, want none", got)
	}
	fresh := newID(t)
	own(t, idx, "user-2", fresh)
	if got := owned(t, idx, "user-2"); !slices.Equal(got, []string{fresh}) {
		t.Errorf("Owned after one entry's time passed = %q, want only the new one", got)
	}
	// Own with a time already past adds nothing that Owned returns, and
	// moves an existing entry out of it.
	if err := idx.Own(ctx, "user-2", fresh, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := idx.Own(ctx, "user-2b", newID(t), time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, gotB := owned(t, idx, "user-2"), owned(t, idx, "user-2b"); len(got)+len(gotB) != 0 {
		t.Errorf("Owned after Own with a past time = %q and %q, want none", got, gotB)
	}

	// 100 concurrent sign-ins of one owner.
	var wg sync.WaitGroup
	ids := make([]string, 100)
	errs := make([]error, 100)
	for i := range ids {
		ids[i] = newID(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = idx.Own(ctx, "user-3", ids[i], time.Now().Add(longTTL))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Own: %v", err)
	}
	slices.Sort(ids)
	if got := owned(t, idx, "user-3"); !slices.Equal(got, ids) {
		t.Errorf("after 100 concurrent Own, Owned holds %d ids, want the 100", len(got))
	}

	// Owners that look alike stay apart.
	alike := []string{"a", "a.b", "a.*", "a*", "a>", "A", "a ", " a", "a/b", "a:b", "a\x00b", "\xff\xfe", "a%", "a_", "ä"}
	byOwner := map[string]string{}
	for _, o := range alike {
		byOwner[o] = newID(t)
		own(t, idx, o, byOwner[o])
	}
	for _, o := range alike {
		if got := owned(t, idx, o); !slices.Equal(got, []string{byOwner[o]}) {
			t.Errorf("Owned(%q) = %q, want only its own id", o, got)
		}
	}

	// Index entries are not records.
	if sc, ok := st.(session.Scanner); ok {
		err := sc.Scan(ctx, func(id string, data []byte) error {
			return fmt.Errorf("Scan of a namespace with index entries and no records reported %q: %s", id, describe(data))
		})
		if err != nil {
			t.Error(err)
		}
	}
	if c, ok := st.(session.Counter); ok {
		if n, err := c.Count(ctx); err != nil || n != 0 {
			t.Errorf("Count of a namespace with index entries and no records = %d, %v; want 0", n, err)
		}
	}
}
