package natsstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/natsstore"
	"github.com/fibersession/session/stores/storetest"
)

// natsURL is the NATS server the tests use: SESSION_NATS_URL or loopback.
var natsURL = storetest.Addr("SESSION_NATS_URL", "nats://127.0.0.1:4222")

// connect connects to url (skipping or failing the test when NATS is
// unreachable) and closes the connection when the test ends.
func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(2 * time.Second)}, opts...)...)
	if err != nil {
		storetest.Unavailable(t, "NATS at "+url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// bucket creates a key-value bucket with a unique name and the given TTL
// on nc's server, deleted when the test ends.
func bucket(t testing.TB, nc *nats.Conn, ttl time.Duration) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	name := "fibersession_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := natsstore.CreateBucket(ctx, js, name, ttl)
	if err != nil {
		storetest.Unavailable(t, "NATS JetStream at "+nc.ConnectedUrl(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteKeyValue(ctx, name); err != nil {
			t.Errorf("deleting bucket %s: %v", name, err)
		}
	})
	return kv
}

// proxied returns a store on kv's bucket through a connection to addr
// (a proxy) that reconnects through addr alone, for ever, every 100ms.
func proxied(t *testing.T, kv jetstream.KeyValue, addr string, opts ...nats.Option) (*nats.Conn, *natsstore.Store) {
	t.Helper()
	nc := connect(t, "nats://"+addr, append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		// Reconnect through the proxy only, whatever servers the server
		// tells of (nats.IgnoreDiscoveredServers is newer than the
		// nats.go the module requires).
		nats.SetCustomDialer(proxyDialer(addr)),
	}, opts...)...)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pkv, err := js.KeyValue(context.Background(), kv.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	return nc, newStore(t, pkv, natsstore.Config{})
}

// proxyDialer dials its address whatever address it is asked for.
type proxyDialer string

func (d proxyDialer) Dial(network, _ string) (net.Conn, error) {
	return net.DialTimeout(network, string(d), 2*time.Second)
}

// TestServerDown runs the fault checks with and without the client's
// reconnect buffer: requests made while disconnected wait in the buffer
// until StoreTimeout, or fail at once without it.
func TestServerDown(t *testing.T) {
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	kv := bucket(t, connect(t, natsURL), sessionBucketTTL)
	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"ReconnectBuffer", nil},
		{"NoReconnectBuffer", []nats.Option{nats.ReconnectBufSize(-1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.RunFaults(t, func(t *testing.T, addr string) session.Store {
				_, st := proxied(t, kv, addr, tc.opts...)
				return st
			}, u.Host, time.Second, storetest.FaultOptions{Reconnect: 10 * time.Second})
		})
	}
}

// TestNoReconnectBufferFailsFast: without the reconnect buffer, a request
// made while the client knows it is disconnected fails at once, well within
// StoreTimeout.
func TestNoReconnectBufferFailsFast(t *testing.T) {
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	kv := bucket(t, connect(t, natsURL), sessionBucketTTL)
	proxy := storetest.NewProxy(t, u.Host)
	nc, st := proxied(t, kv, proxy.Addr(), nats.ReconnectBufSize(-1))
	const timeout = 2 * time.Second
	b := storetest.NewBrowser(t, storetest.NewApp(t, session.Config[string, string]{Store: st, StoreTimeout: timeout}))
	b.Expect("POST", "/login", "ok")

	proxy.Stop()
	for deadline := time.Now().Add(5 * time.Second); nc.Status() != nats.RECONNECTING; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("client status %v 5s after the proxy stopped, want RECONNECTING", nc.Status())
		}
	}
	start := time.Now()
	if status, body := b.Do("GET", "/"); status != 500 || body != "Internal Server Error" {
		t.Errorf("GET / while reconnecting = %d %q, want 500 %q", status, body, "Internal Server Error")
	}
	if d := time.Since(start); d > timeout/4 {
		t.Errorf("a request while reconnecting without a buffer took %v, want an immediate failure", d)
	}
}
