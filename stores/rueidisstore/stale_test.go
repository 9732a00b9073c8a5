package rueidisstore_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/redis/rueidis"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

// TestStaleReadRefused: a stale cached read never leads to a write that
// undoes another instance's. Instance B's client has its invalidations sent
// elsewhere (CLIENT TRACKING ... REDIRECT), so its cache keeps a session
// that instance A then changes. A request through B that reads the counter
// from that outdated record and sets it one higher is refused (500,
// session.ErrStale) instead of writing A's count again, and the next one
// through B reads the server's record and counts on.
func TestStaleReadRefused(t *testing.T) {
	if redisCluster != nil {
		t.Skip("SESSION_REDIS_CLUSTER is set: the redirection of invalidations needs one server (SESSION_REDIS_ADDR)")
	}
	ctx := context.Background()
	direct := newStandalone(t)
	sink, release := direct.Dedicate() // where B's invalidations go
	t.Cleanup(release)
	sinkID, err := sink.Do(ctx, sink.B().ClientId().Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	deaf := newStandaloneWith(t, func(o *rueidis.ClientOption) {
		o.ClientTrackingOptions = []string{"OPTIN", "REDIRECT", strconv.FormatInt(sinkID, 10)}
	})
	prefix := testPrefix(t, direct)
	a := storetest.NewBrowser(t, storetest.NewApp(t, session.Config[string, string]{Store: newStore(t, newStandalone(t), prefix)}))
	b := storetest.NewBrowser(t, storetest.NewApp(t, session.Config[string, string]{Store: newStore(t, deaf, prefix)}))

	a.Expect("POST", "/visit", "1")
	b.SetCookie(a.Cookie())
	b.Expect("GET", "/", "user= flash=") // B caches the record: visits=1
	a.Expect("POST", "/visit", "2")      // B is not told
	if status, body := b.Do("POST", "/visit"); status != http.StatusInternalServerError {
		t.Fatalf("POST /visit through B, which read visits=1 from its cache after A stored 2, answered %d %q; want 500 (ErrStale), not a write of 2 over 2", status, body)
	}
	a.Expect("POST", "/visit", "3") // nothing of B's refused request was written
	b.Expect("POST", "/visit", "4") // B now reads the server's record
	a.Expect("POST", "/visit", "5")
}
