package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/redisstore"
	"github.com/fibersession/session/stores/storetest"
)

// The administration capabilities and the owner index.
var _ interface {
	session.Scanner
	session.Counter
	session.Clearer
	session.OwnerIndex
} = (*redisstore.Store)(nil)

// TestAdminConformance runs the shared checks of the administration
// capabilities and the owner index; a namespace is a prefix of its own,
// whose keys are deleted when the test ends.
func TestAdminConformance(t *testing.T) {
	c := newClient(t)
	storetest.RunAdmin(t, func(t *testing.T, namespace string) session.Store {
		prefix := "sessiontest:" + namespace + ":"
		t.Cleanup(func() { deletePrefix(t, c, prefix) })
		return newStore(t, c, prefix)
	}, storetest.AdminOptions{TTLGranularity: time.Millisecond})
}

// middlewareID returns a random id of the middleware's form.
func middlewareID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// until waits, without sleeping, until cond holds, and fails the test when
// it still does not after a few seconds.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 5s", what)
		}
		runtime.Gosched()
	}
}

// scanAll returns what Scan reports, failing on an id reported twice (a
// SCAN may report a key twice only when the keyspace is rehashed or
// resharded during the scan, which these tests do not do).
func scanAll(t *testing.T, st *redisstore.Store) map[string]string {
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
func setMany(t *testing.T, st *redisstore.Store, want map[string]string) {
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

// TestAdmin writes 10,000 records, an expired one and owner indexes, and
// checks Scan, Count and Clear, and that the keys of another prefix and an
// unrelated key are untouched.
func TestAdmin(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	other := newStore(t, c, testPrefix(t, c))
	unrelated := testPrefix(t, c) + "unrelated"
	if err := c.Set(ctx, unrelated, "not a session", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 10_000
	want := make(map[string]string, n)
	for i := range n {
		id := middlewareID()
		if i%10 == 0 {
			id = fmt.Sprint("other:", i, "*") // any id is a record's
		}
		want[id] = fmt.Sprint("record ", i, " \x00\xff")
	}
	setMany(t, st, want)
	if err := other.Set(ctx, "kept", []byte("other store"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// An expired record is not reported (Redis never returns an expired
	// key); Set rounds a TTL up to 1ms.
	if err := st.Set(ctx, "expired", []byte("x"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	until(t, "expired", func() bool {
		_, err := st.Get(ctx, "expired")
		return errors.Is(err, session.ErrNotFound)
	})
	// Owner indexes are not records.
	i := 0
	for id := range want {
		if err := st.Own(ctx, fmt.Sprint("user", i%3), id, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if i++; i == 30 {
			break
		}
	}
	if err := other.Own(ctx, "user0", "kept", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	if got := scanAll(t, st); len(got) != n {
		t.Errorf("Scan reported %d records, want %d", len(got), n)
	} else {
		for id, data := range want {
			if got[id] != data {
				t.Fatalf("Scan reported %q for %q, want %q", got[id], id, data)
			}
		}
	}
	if got, err := st.Count(ctx); err != nil || got != n {
		t.Errorf("Count = %d, %v; want %d", got, err, n)
	}

	if err := st.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Count(ctx); err != nil || got != 0 {
		t.Errorf("Count after Clear = %d, %v; want 0", got, err)
	}
	if got := scanAll(t, st); len(got) != 0 {
		t.Errorf("Scan after Clear reported %d records", len(got))
	}
	for i := range 3 {
		owner := fmt.Sprint("user", i)
		if ids, err := st.Owned(ctx, owner); err != nil || len(ids) != 0 {
			t.Errorf("Owned(%s) after Clear = %q, %v; want none", owner, ids, err)
		}
		if n := c.Exists(ctx, st.OwnerKey(owner)).Val(); n != 0 {
			t.Errorf("the index %s is left after Clear", st.OwnerKey(owner))
		}
	}
	if got, err := other.Get(ctx, "kept"); err != nil || string(got) != "other store" {
		t.Errorf("another prefix's record after Clear: %q, %v", got, err)
	}
	if ids, err := other.Owned(ctx, "user0"); err != nil || !slices.Equal(ids, []string{"kept"}) {
		t.Errorf("another prefix's index after Clear: %q, %v", ids, err)
	}
	if got, err := c.Get(ctx, unrelated).Result(); err != nil || got != "not a session" {
		t.Errorf("an unrelated key after Clear: %q, %v", got, err)
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
		for _, s := range []*redisstore.Store{st, sib} {
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

// TestScanStops: an error from fn stops Scan, which returns it as it is; a
// done context fails Scan, Count and Clear; keys that are not strings are
// skipped.
func TestScanStops(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	want := make(map[string]string)
	for i := range 50 {
		want[fmt.Sprint(i)] = "x"
	}
	setMany(t, st, want)
	if err := c.RPush(ctx, st.Key("a list"), "not a record").Err(); err != nil {
		t.Fatal(err)
	}
	errStop := errors.New("stop")
	calls := 0
	err := st.Scan(ctx, func(string, []byte) error {
		if calls++; calls == 3 {
			return errStop
		}
		return nil
	})
	if err != errStop || calls != 3 {
		t.Errorf("Scan = %v after %d calls; want %v after 3", err, calls, errStop)
	}
	if got := scanAll(t, st); len(got) != 50 {
		t.Errorf("Scan reported %d records, want the 50 strings", len(got))
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.Scan(canceled, func(string, []byte) error { return nil }); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "redisstore: scan: ") {
		t.Errorf("Scan with a done context: %v", err)
	}
	if _, err := st.Count(canceled); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "redisstore: count: ") {
		t.Errorf("Count with a done context: %v", err)
	}
	if err := st.Clear(canceled); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "redisstore: clear: ") {
		t.Errorf("Clear with a done context: %v", err)
	}
	if err := st.Own(canceled, "o", "id", time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("Own with a done context: %v", err)
	}
	if err := st.Disown(canceled, "o", "id"); !errors.Is(err, context.Canceled) {
		t.Errorf("Disown with a done context: %v", err)
	}
	if _, err := st.Owned(canceled, "o"); !errors.Is(err, context.Canceled) {
		t.Errorf("Owned with a done context: %v", err)
	}
}

// TestOwnerIndex checks Own, Owned and Disown, and the index's keys.
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
	hour := time.Now().Add(time.Hour)

	t.Run("RoundTrip", func(t *testing.T) {
		a, b, d := middlewareID(), "b", middlewareID()
		for _, id := range []string{a, b, d, a} { // a twice: one entry
			if err := st.Own(ctx, "alice", id, hour); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{a, b, d}
		slices.Sort(want)
		if got := owned("alice"); !slices.Equal(got, want) {
			t.Errorf("Owned = %q, want %q", got, want)
		}
		if err := st.Disown(ctx, "alice", b, "missing"); err != nil {
			t.Fatal(err)
		}
		want = slices.DeleteFunc(want, func(id string) bool { return id == b })
		if got := owned("alice"); !slices.Equal(got, want) {
			t.Errorf("Owned after Disown = %q, want %q", got, want)
		}
		if err := st.Disown(ctx, "alice"); err != nil {
			t.Errorf("Disown of no ids: %v", err)
		}
		if err := st.Disown(ctx, "alice", a, d); err != nil {
			t.Fatal(err)
		}
		if got := owned("alice"); len(got) != 0 {
			t.Errorf("Owned after disowning all = %q", got)
		}
		if n := c.Exists(ctx, st.OwnerKey("alice")).Val(); n != 0 {
			t.Error("an empty index is still a key")
		}
		if got := owned("nobody"); len(got) != 0 {
			t.Errorf("Owned of an unknown owner = %q", got)
		}
	})

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
		if ttl := c.PTTL(ctx, key).Val(); ttl < 2*time.Hour-time.Minute || ttl > 2*time.Hour {
			t.Errorf("PTTL of the index = %v, want about 2h (its latest until)", ttl)
		}
		score := c.ZScore(ctx, key, fmt.Sprint(late.UnixNano())).Val()
		if int64(score) != late.UnixMilli() {
			t.Errorf("score %v, want the until in Unix ms %d", score, late.UnixMilli())
		}
		// Moving the latest entry earlier moves the key's expiry with it.
		if err := st.Own(ctx, "eve", fmt.Sprint(late.UnixNano()), hour); err != nil {
			t.Fatal(err)
		}
		if ttl := c.PTTL(ctx, key).Val(); ttl < time.Hour-time.Minute || ttl > time.Hour {
			t.Errorf("PTTL of the index = %v, want about 1h", ttl)
		}
		// An until beyond what a score holds exactly is kept as the largest.
		if err := st.Own(ctx, "eve", "forever", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if got := owned("eve"); !slices.Contains(got, "forever") {
			t.Errorf("Owned = %q, want it to hold forever", got)
		}
		// In ms: as a time.Duration it would overflow.
		if ms, err := c.Do(ctx, "PTTL", key).Int64(); err != nil || ms < 300*365*24*3600*1000 {
			t.Errorf("PTTL of the index = %dms, %v; want centuries", ms, err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		key := st.OwnerKey("bob")
		if err := st.Own(ctx, "bob", "past", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := c.Exists(ctx, key).Val(); n != 0 {
			t.Error("an Own with an until that has passed left a key")
		}
		if err := st.Own(ctx, "bob", "short", time.Now().Add(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		until(t, "past its until", func() bool { return len(owned("bob")) == 0 })
		if err := st.Own(ctx, "bob", "long", hour); err != nil {
			t.Fatal(err)
		}
		if got := owned("bob"); !slices.Equal(got, []string{"long"}) {
			t.Errorf("Owned = %q, want [long]", got)
		}
		if got := c.ZRange(ctx, key, 0, -1).Val(); !slices.Equal(got, []string{"long"}) {
			t.Errorf("the index holds %q after the next Own, want [long]: those past their time are removed", got)
		}
		// Moving an entry's until to the past removes it, and the empty
		// index with it.
		if err := st.Own(ctx, "bob", "long", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := c.Exists(ctx, key).Val(); n != 0 {
			t.Error("an index without live entries is still a key")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		want := make([]string, 100)
		for i := range want {
			want[i] = middlewareID()
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				if err := st.Own(ctx, "carol", id, hour); err != nil {
					t.Error(err)
				}
			}(want[i])
		}
		wg.Wait()
		slices.Sort(want)
		if got := owned("carol"); !slices.Equal(got, want) {
			t.Errorf("Owned has %d of the 100 ids owned concurrently", len(got))
		}
	})

	t.Run("Separate", func(t *testing.T) {
		owners := []string{"d", "dd", "d:", ":d", "d:*", "*", "d*", "d/e", "d/", "\x00", "\x00\xff", "\xff", "d\x00", "", "{d}", "owner:d", strings.Repeat("\xfe", 256)}
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
		if err := st.Disown(ctx, "d", "sep-1", "sep-2"); err != nil { // ids of other owners
			t.Fatal(err)
		}
		for i, o := range owners {
			if got := owned(o); len(got) != 1 {
				t.Errorf("Owned(%q) after a Disown of another owner = %q, want [sep-%d]", o, got, i)
			}
		}
	})

	t.Run("NotRecords", func(t *testing.T) {
		if err := st.Set(ctx, "record", []byte("x"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Count(ctx); err != nil || got != 1 {
			t.Errorf("Count = %d, %v; want 1: the indexes are not records", got, err)
		}
		if got := scanAll(t, st); len(got) != 1 || got["record"] != "x" {
			t.Errorf("Scan reported %q; want only the record", got)
		}
		if err := st.Clear(ctx); err != nil {
			t.Fatal(err)
		}
		if got := owned("carol"); len(got) != 0 {
			t.Errorf("Owned after Clear = %q", got)
		}
	})
}

// TestOwnerIndexWrongType: an index key of another type fails Own and
// Owned with an error naming the operation.
func TestOwnerIndexWrongType(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	if err := c.Set(ctx, st.OwnerKey("x"), "a string", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := st.Own(ctx, "x", "id", time.Now().Add(time.Hour)); err == nil || !strings.HasPrefix(err.Error(), "redisstore: own: ") {
		t.Errorf("Own over a string: %v", err)
	}
	if _, err := st.Owned(ctx, "x"); err == nil || !strings.HasPrefix(err.Error(), "redisstore: owned: WRONGTYPE") {
		t.Errorf("Owned over a string: %v", err)
	}
}

// TestAdminUniversalClient runs Scan, Count and Clear through a client
// made by redis.NewUniversalClient (a cluster client with a cluster).
func TestAdminUniversalClient(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	var u redis.UniversalClient
	if redisCluster != nil {
		u = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: redisCluster})
	} else {
		u = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{redisAddr}})
	}
	t.Cleanup(func() { _ = u.Close() })
	st := newStore(t, u, testPrefix(t, c))
	want := make(map[string]string)
	for i := range 300 {
		want[middlewareID()] = fmt.Sprint(i)
	}
	setMany(t, st, want)
	if got := scanAll(t, st); len(got) != len(want) {
		t.Errorf("Scan reported %d records, want %d", len(got), len(want))
	}
	if got, err := st.Count(ctx); err != nil || got != len(want) {
		t.Errorf("Count = %d, %v; want %d", got, err, len(want))
	}
	if err := st.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Count(ctx); err != nil || got != 0 {
		t.Errorf("Count after Clear = %d, %v", got, err)
	}
}

// TestAdminRing runs Scan, Count and Clear through a Ring of two shards,
// which SCAN every shard: two databases of the standalone server, reached
// under two names. Not with a cluster, whose nodes have one database.
func TestAdminRing(t *testing.T) {
	if redisCluster != nil {
		t.Skip("a Ring over the standalone server only")
	}
	ctx := context.Background()
	newStandalone(t) // skips when the server is down
	host, port, _ := strings.Cut(redisAddr, ":")
	alias := "localhost:" + port
	if host == "localhost" {
		alias = "127.0.0.1:" + port
	}
	ring := redis.NewRing(&redis.RingOptions{
		Addrs: map[string]string{"a": redisAddr, "b": alias},
		NewClient: func(opt *redis.Options) *redis.Client {
			if opt.Addr == alias {
				opt.DB = 1
			}
			return redis.NewClient(opt)
		},
	})
	t.Cleanup(func() { _ = ring.Close() })
	if err := ring.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() }); err != nil {
		t.Skipf("a Ring over %s and %s: %v", redisAddr, alias, err)
	}
	st := newStore(t, ring, "sessiontest:"+randomHex(8)+":")
	t.Cleanup(func() { _ = st.Clear(context.Background()) })
	want := make(map[string]string)
	for i := range 300 {
		want[middlewareID()] = fmt.Sprint(i)
	}
	setMany(t, st, want)
	perShard := map[int]int{}
	for _, db := range []int{0, 1} {
		c := redis.NewClient(&redis.Options{Addr: redisAddr, DB: db})
		n, err := c.Eval(ctx, "return #redis.call('KEYS', ARGV[1])", nil, st.Key("*")).Int()
		_ = c.Close()
		if err != nil {
			t.Fatal(err)
		}
		perShard[db] = n
	}
	if perShard[0] == 0 || perShard[1] == 0 {
		t.Fatalf("records per database %v: the Ring did not spread them", perShard)
	}
	if got := scanAll(t, st); len(got) != len(want) {
		t.Errorf("Scan reported %d records, want %d", len(got), len(want))
	}
	if got, err := st.Count(ctx); err != nil || got != len(want) {
		t.Errorf("Count = %d, %v; want %d", got, err, len(want))
	}
	if err := st.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Count(ctx); err != nil || got != 0 {
		t.Errorf("Count after Clear = %d, %v", got, err)
	}
}
