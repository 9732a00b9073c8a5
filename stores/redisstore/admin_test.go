package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
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
// whose keys are deleted when the test ends. The tests below check only
// what is Redis's own: prefixes and ids holding the glob's special
// characters, keys of another type, done contexts, the index's keys and
// their expiry, and other clients (UniversalClient, Ring).
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
	if err := c.RPush(ctx, st.Key("a list"), "not a record").Err(); err != nil {
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
		if err := op(canceled); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "redisstore: "+name+": ") {
			t.Errorf("%s with a done context: %v, want redisstore: %s: ... context canceled", name, err, name)
		}
	}
}

// TestOwnerIndex checks the index's keys (RunAdmin checks Own, Owned and
// Disown through the store): an owner's sorted set, its scores and expiry,
// the key gone once no entry is live, and owners that only Redis tells
// apart from others.
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

	t.Run("Disown", func(t *testing.T) {
		for _, id := range []string{"a", "b"} {
			if err := st.Own(ctx, "alice", id, hour); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Disown(ctx, "alice"); err != nil { // ZREM needs a member
			t.Errorf("Disown of no ids: %v", err)
		}
		if got := owned("alice"); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("Owned after a Disown of no ids = %q, want [a b]", got)
		}
		if err := st.Disown(ctx, "alice", "a", "b"); err != nil {
			t.Fatal(err)
		}
		if got := owned("alice"); len(got) != 0 {
			t.Errorf("Owned after disowning all = %q", got)
		}
		if n := c.Exists(ctx, st.OwnerKey("alice")).Val(); n != 0 {
			t.Error("an empty index is still a key")
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

	// Owned leaves out an entry past its time while the set still holds
	// it (the key lives until its latest entry); the owner's next Own
	// removes it, and an Own that moves the last live entry to the past
	// removes the key.
	t.Run("Expiry", func(t *testing.T) {
		key := st.OwnerKey("bob")
		if err := st.Own(ctx, "bob", "past", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := c.Exists(ctx, key).Val(); n != 0 {
			t.Error("an Own with an until that has passed left a key")
		}
		soon := time.Now().Add(100 * time.Millisecond)
		for id, u := range map[string]time.Time{"long": hour, "short": soon} {
			if err := st.Own(ctx, "bob", id, u); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Until(soon) + 2*time.Millisecond)
		if got := owned("bob"); !slices.Equal(got, []string{"long"}) {
			t.Errorf("Owned once an entry's time passed = %q, want [long]", got)
		}
		if got := c.ZRange(ctx, key, 0, -1).Val(); !slices.Contains(got, "short") {
			t.Fatalf("the index holds %q before the next Own: the test cannot show Own removing the entry past its time", got)
		}
		if err := st.Own(ctx, "bob", "new", hour); err != nil {
			t.Fatal(err)
		}
		if got := c.ZRange(ctx, key, 0, -1).Val(); slices.Contains(got, "short") {
			t.Errorf("the index holds %q after the next Own, want the entry past its time removed", got)
		}
		for _, id := range []string{"long", "new"} {
			if err := st.Own(ctx, "bob", id, time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if got := owned("bob"); len(got) != 0 {
			t.Errorf("Owned after moving every entry's until to the past = %q", got)
		}
		if n := c.Exists(ctx, key).Val(); n != 0 {
			t.Error("an index without live entries is still a key")
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

// adminRoundTrip writes 300 records through st, under ids of the
// middleware's form and ids that hold ':' and the glob's special characters
// (any id that does not start with "owner:" is a record's), and checks that
// Scan reports each once with its bytes, Count counts them and Clear
// deletes them. written, unless nil, is called once the records are
// written.
func adminRoundTrip(t *testing.T, st *redisstore.Store, written func()) {
	t.Helper()
	ctx := context.Background()
	want := make(map[string]string)
	for i := range 295 {
		id := middlewareID()
		if i%10 == 0 {
			id = fmt.Sprint("other:", i, "*")
		}
		want[id] = fmt.Sprint("record ", i, " \x00\xff")
	}
	for _, id := range []string{"owner", "owner-x:y", "x:owner:", "a[b]?", `c\d`} {
		want[id] = id
	}
	setMany(t, st, want)
	if written != nil {
		written()
	}
	got := scanAll(t, st)
	if len(got) != len(want) {
		t.Errorf("Scan reported %d records, want %d", len(got), len(want))
	}
	for id, data := range want {
		if got[id] != data {
			t.Fatalf("Scan reported %q for %q, want %q", got[id], id, data)
		}
	}
	if n, err := st.Count(ctx); err != nil || n != len(want) {
		t.Errorf("Count = %d, %v; want %d", n, err, len(want))
	}
	if err := st.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Count(ctx); err != nil || n != 0 {
		t.Errorf("Count after Clear = %d, %v", n, err)
	}
}

// TestAdminUniversalClient runs adminRoundTrip through a client made by
// redis.NewUniversalClient (a cluster client with a cluster).
func TestAdminUniversalClient(t *testing.T) {
	c := newClient(t)
	var u redis.UniversalClient
	if redisCluster != nil {
		u = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: redisCluster})
	} else {
		u = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{redisAddr}})
	}
	t.Cleanup(func() { _ = u.Close() })
	adminRoundTrip(t, newStore(t, u, testPrefix(t, c)), nil)
}

// TestAdminRing runs adminRoundTrip through a Ring of two shards, which
// SCAN every shard: two databases of the standalone server, reached under
// two names. Not with a cluster, whose nodes have one database.
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
	adminRoundTrip(t, st, func() {
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
	})
}
