package rueidisstore_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/rueidisstore"
	"github.com/fibersession/session/stores/storetest"
)

// The administration capabilities and the owner index.
var _ interface {
	session.Scanner
	session.Counter
	session.Clearer
	session.OwnerIndex
} = (*rueidisstore.Store)(nil)

// TestAdminConformance runs the shared checks of the administration
// capabilities and the owner index, with the cache on; a namespace is a
// prefix of its own, whose keys are deleted when the test ends.
func TestAdminConformance(t *testing.T) {
	c := newClient(t)
	storetest.RunAdmin(t, func(t *testing.T, namespace string) session.Store {
		prefix := "sessiontest:" + namespace + ":"
		t.Cleanup(func() { deletePrefix(t, c, prefix) })
		return newStore(t, c, prefix)
	}, storetest.AdminOptions{TTLGranularity: time.Millisecond})
}

// scanAll returns what Scan reports, failing on an id reported twice.
func scanAll(t *testing.T, st *rueidisstore.Store) map[string]string {
	t.Helper()
	got := make(map[string]string)
	err := st.Scan(context.Background(), func(id string, data []byte) error {
		if _, dup := got[id]; dup {
			t.Errorf("Scan reported %q twice", id)
		}
		got[id] = string(data)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return got
}

// setMany writes the records of want through st, from 8 goroutines.
func setMany(t *testing.T, st *rueidisstore.Store, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	ids := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if err := st.Set(ctx, id, []byte(want[id]), time.Hour); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for id := range want {
		ids <- id
	}
	close(ids)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// TestAdminGlobPrefix: a prefix holding the glob's special characters
// matches only itself, so Scan, Count and Clear leave alone the keys of a
// prefix the unescaped pattern would match.
func TestAdminGlobPrefix(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	base := testPrefix(t, c)
	for _, tc := range []struct{ prefix, sibling string }{
		{base + "a*", base + "ab"},
		{base + "[ab]", base + "a"},
		{base + "?", base + "x"},
		{base + `\x`, base + "x"},
	} {
		st, sib := newStore(t, c, tc.prefix), newStore(t, c, tc.sibling)
		for _, s := range []*rueidisstore.Store{st, sib} {
			if err := s.Set(ctx, "id", []byte("x"), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if got := scanAll(t, st); len(got) != 1 || got["id"] != "x" {
			t.Errorf("prefix %q: Scan = %q, want only its own record", tc.prefix, got)
		}
		if got, err := st.Count(ctx); err != nil || got != 1 {
			t.Errorf("prefix %q: Count = %d, %v; want 1", tc.prefix, got, err)
		}
		if err := st.Clear(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, "id"); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("prefix %q: its record survived Clear: %v", tc.prefix, err)
		}
		if _, err := sib.Get(ctx, "id"); err != nil {
			t.Errorf("prefix %q: Clear deleted the record of prefix %q: %v", tc.prefix, tc.sibling, err)
		}
		if err := sib.Clear(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClearCached: records this store has in its cache are gone for its
// Gets as soon as Clear returns, 300 of them, and the store caches again
// what is written afterwards.
func TestClearCached(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	want := make(map[string]string)
	for i := range 300 {
		want[fmt.Sprint("id", i)] = fmt.Sprint("record ", i)
	}
	setMany(t, st, want)
	for id, data := range want { // twice: the second read is the cache's
		for range 2 {
			if got, err := st.Get(ctx, id); err != nil || string(got) != data {
				t.Fatalf("Get(%s) = %q, %v; want %q", id, got, err, data)
			}
		}
	}
	if err := st.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if got, err := st.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get(%s) after Clear = %q, %v; want ErrNotFound", id, got, err)
		}
	}
	if err := st.Set(ctx, "after", []byte("new"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, "after"); err != nil || string(got) != "new" {
		t.Errorf("Get after Clear and Set = %q, %v", got, err)
	}
}

// TestScanStops: Scan returns fn's error as it is (RunAdmin checks that
// it stops); keys under the prefix that are not strings are skipped; a done
// context fails every administration and index method with an error naming
// it.
func TestScanStops(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	want := make(map[string]string)
	for i := range 50 {
		want[fmt.Sprint(i)] = "x"
	}
	setMany(t, st, want)
	if err := c.Do(ctx, c.B().Rpush().Key(st.Key("a list")).Element("not a record").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	errStop := errors.New("stop")
	if err := st.Scan(ctx, func(string, []byte) error { return errStop }); err != errStop {
		t.Errorf("Scan whose fn fails = %v, want fn's error as it is", err)
	}
	if got := scanAll(t, st); len(got) != 50 {
		t.Errorf("Scan reported %d records, want the 50 strings", len(got))
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	hour := time.Now().Add(time.Hour)
	for name, op := range map[string]func(context.Context) error{
		"scan":   func(ctx context.Context) error { return st.Scan(ctx, func(string, []byte) error { return nil }) },
		"count":  func(ctx context.Context) error { _, err := st.Count(ctx); return err },
		"clear":  func(ctx context.Context) error { return st.Clear(ctx) },
		"own":    func(ctx context.Context) error { return st.Own(ctx, "o", "id", hour) },
		"disown": func(ctx context.Context) error { return st.Disown(ctx, "o", "id") },
		"owned":  func(ctx context.Context) error { _, err := st.Owned(ctx, "o"); return err },
	} {
		if err := op(canceled); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "rueidisstore: "+name+": ") {
			t.Errorf("%s with a done context: %v, want rueidisstore: %s: ... context canceled", name, err, name)
		}
	}
}

// TestOwnerIndex checks the index's keys (RunAdmin checks Own, Owned and
// Disown through the store): an owner's sorted set, its scores and expiry,
// and owners that only Redis tells apart from others.
func TestOwnerIndex(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	owned := func(owner string) []string {
		t.Helper()
		ids, err := st.Owned(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	pttl := func(key string) int64 {
		t.Helper()
		ms, err := c.Do(ctx, c.B().Pttl().Key(key).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	hour := time.Now().Add(time.Hour)

	t.Run("KeyAndTTL", func(t *testing.T) {
		key := st.OwnerKey("eve")
		if want := st.Key("owner:" + base64.RawURLEncoding.EncodeToString([]byte("eve"))); key != want {
			t.Errorf("OwnerKey = %q, want %q", key, want)
		}
		late := time.Now().Add(2 * time.Hour)
		for _, u := range []time.Time{hour, late, hour} { // the latest until sets the key's expiry
			if err := st.Own(ctx, "eve", fmt.Sprint(u.UnixNano()), u); err != nil {
				t.Fatal(err)
			}
		}
		if ms := pttl(key); ms < (2*time.Hour-time.Minute).Milliseconds() || ms > (2*time.Hour).Milliseconds() {
			t.Errorf("PTTL of the index = %dms, want about 2h (its latest until)", ms)
		}
		score, err := c.Do(ctx, c.B().Zscore().Key(key).Member(fmt.Sprint(late.UnixNano())).Build()).AsFloat64()
		if err != nil || int64(score) != late.UnixMilli() {
			t.Errorf("score %v (%v), want the until in Unix ms %d", score, err, late.UnixMilli())
		}
		// An until beyond what a score holds exactly is kept as the largest.
		if err := st.Own(ctx, "eve", "forever", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if got := owned("eve"); !slices.Contains(got, "forever") {
			t.Errorf("Owned = %q, want it to hold forever", got)
		}
		if ms := pttl(key); ms < 300*365*24*3600*1000 {
			t.Errorf("PTTL of the index = %dms; want centuries", ms)
		}
		if err := st.Disown(ctx, "eve"); err != nil { // ZREM needs a member
			t.Errorf("Disown of no ids: %v", err)
		}
	})

	// Owners next to those of RunAdmin: the empty owner (whose key ends
	// in the mark), a Cluster hash tag, the mark itself, and the longest
	// owner SetOwner accepts.
	t.Run("Separate", func(t *testing.T) {
		owners := []string{"d", "", "{d}", "owner:d", "owner:", strings.Repeat("\xfe", 256)}
		for i, o := range owners {
			if err := st.Own(ctx, o, fmt.Sprint("sep-", i), hour); err != nil {
				t.Fatal(err)
			}
		}
		for i, o := range owners {
			if got, want := owned(o), []string{fmt.Sprint("sep-", i)}; !slices.Equal(got, want) {
				t.Errorf("Owned(%q) = %q, want %q", o, got, want)
			}
		}
	})

	t.Run("WrongType", func(t *testing.T) {
		if err := c.Do(ctx, c.B().Set().Key(st.OwnerKey("x")).Value("a string").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if err := st.Own(ctx, "x", "id", hour); err == nil || !strings.HasPrefix(err.Error(), "rueidisstore: own: ") {
			t.Errorf("Own over a string: %v", err)
		}
		if _, err := st.Owned(ctx, "x"); err == nil || !strings.HasPrefix(err.Error(), "rueidisstore: owned: WRONGTYPE") {
			t.Errorf("Owned over a string: %v", err)
		}
	})
}
