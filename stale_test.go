package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// staleStore is the counting memory store declaring, or not, that its reads
// may be outdated (StaleReader).
type staleStore struct {
	*countingStore
	stale bool
}

func (s *staleStore) StaleReads() bool { return s.stale }

// change writes, as another app instance would, the session under id with
// key set to v (or removed, for v == ""), after this request read it.
func (h *harness) change(id, key, v string) {
	h.t.Helper()
	r, ok := h.stored(id)
	if !ok {
		h.t.Fatalf("no record under %s", id)
	}
	if v == "" {
		r.vals = slicesDelete(r.vals, find(r.vals, key))
	} else {
		r.vals = put(r.vals, entry[string]{key: key, v: v, has: true})
	}
	r.version++
	data, err := encodeRecord(h.m.cfg.Codec, &r)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.Store.Set(context.Background(), id, data, time.Hour); err != nil {
		h.t.Fatal(err)
	}
}

func slicesDelete[T any](es []entry[T], i int) []entry[T] {
	if i < 0 {
		return es
	}
	return append(es[:i], es[i+1:]...)
}

// On a store whose reads may be outdated, a save does not let a value the
// request read and then changed overwrite a value another instance stored
// after that read: it fails with ErrStale and writes nothing. Keys the
// request set without reading them, keys it only read, and Update merge as
// on any store with compare-and-set; on a store without StaleReads the
// later save wins, as documented.
func TestStaleReads(t *testing.T) {
	type want struct {
		code int               // the response's status
		vals map[string]string // the stored values afterwards ("" absent)
	}
	tests := []struct {
		name    string
		handler func(s *sess)     // runs after the other instance's change
		read    func(s *sess)     // runs before it
		other   [2]string         // key and value the other instance stores ("": removes)
		stale   want              // on a StaleReader store
		fresh   *want             // on the same store without StaleReads; nil: as stale
		rotate  bool              // the handler also calls RegenerateID(false)
		setup   map[string]string // values stored before the request
	}{{
		name:  "ReadThenSet",
		read:  func(s *sess) { s.Get("n") },
		other: [2]string{"n", "other"},
		handler: func(s *sess) {
			s.Set("n", "mine")
		},
		setup: map[string]string{"n": "old"},
		stale: want{500, map[string]string{"n": "other"}},
		fresh: &want{200, map[string]string{"n": "mine"}},
	}, {
		name:    "ReadAbsentThenSet",
		read:    func(s *sess) { s.Get("n") },
		other:   [2]string{"n", "other"},
		handler: func(s *sess) { s.Set("n", "mine") },
		stale:   want{500, map[string]string{"n": "other"}},
		fresh:   &want{200, map[string]string{"n": "mine"}},
	}, {
		name:    "HasThenUnset",
		read:    func(s *sess) { s.Has("n") },
		other:   [2]string{"n", "other"},
		handler: func(s *sess) { s.Unset("n") },
		setup:   map[string]string{"n": "old"},
		stale:   want{500, map[string]string{"n": "other"}},
		fresh:   &want{200, map[string]string{"n": ""}},
	}, {
		name:    "ReadThenSetRemoved",
		read:    func(s *sess) { s.Get("n") },
		other:   [2]string{"n", ""},
		handler: func(s *sess) { s.Set("n", "mine") },
		setup:   map[string]string{"n": "old"},
		stale:   want{500, map[string]string{"n": ""}},
		fresh:   &want{200, map[string]string{"n": "mine"}},
	}, {
		name:    "SetWithoutRead",
		other:   [2]string{"n", "other"},
		handler: func(s *sess) { s.Set("n", "mine") },
		setup:   map[string]string{"n": "old"},
		stale:   want{200, map[string]string{"n": "mine"}},
	}, {
		name:    "ReadOtherKey",
		read:    func(s *sess) { s.Get("a") },
		other:   [2]string{"a", "other"},
		handler: func(s *sess) { s.Set("b", "mine") },
		setup:   map[string]string{"a": "old"},
		stale:   want{200, map[string]string{"a": "other", "b": "mine"}},
	}, {
		name:    "ReadThenSetUnchanged",
		read:    func(s *sess) { s.Get("n") },
		other:   [2]string{"a", "other"},
		handler: func(s *sess) { s.Set("n", "mine") },
		setup:   map[string]string{"n": "old"},
		stale:   want{200, map[string]string{"a": "other", "n": "mine"}},
	}, {
		name:  "Update",
		read:  func(s *sess) { s.Get("n") },
		other: [2]string{"n", "other"},
		handler: func(s *sess) {
			s.Update("n", func(old string) string { return old + "+1" })
		},
		setup: map[string]string{"n": "old"},
		stale: want{200, map[string]string{"n": "other+1"}},
	}, {
		name:    "ReadThenSetRotated",
		read:    func(s *sess) { s.Get("n") },
		other:   [2]string{"n", "other"},
		handler: func(s *sess) { s.Set("n", "mine") },
		rotate:  true,
		setup:   map[string]string{"n": "old"},
		stale:   want{500, map[string]string{"n": "other"}},
		fresh:   &want{200, map[string]string{"n": "mine"}},
	}}
	for _, tc := range tests {
		for _, stale := range []bool{true, false} {
			name := tc.name + "/Fresh"
			if stale {
				name = tc.name + "/Stale"
			}
			t.Run(name, func(t *testing.T) {
				st := &staleStore{countingStore: newCountingStore(t), stale: stale}
				h := newHarness(t, Config[string, string]{Store: st})
				h.store = st.countingStore
				id := h.login("ada")
				if len(tc.setup) > 0 {
					h.do(func(c *fiber.Ctx, s *sess) error {
						for k, v := range tc.setup {
							s.Set(k, v)
						}
						return nil
					})
				}
				records := st.Len()
				resp := h.do(func(c *fiber.Ctx, s *sess) error {
					if tc.read != nil {
						tc.read(s)
					}
					h.change(id, tc.other[0], tc.other[1])
					tc.handler(s)
					if tc.rotate {
						s.RegenerateID(false)
					}
					return nil
				})
				w := tc.stale
				if !stale && tc.fresh != nil {
					w = *tc.fresh
				}
				if resp.StatusCode != w.code {
					t.Errorf("the request answered %d, want %d", resp.StatusCode, w.code)
				}
				if w.code != 200 {
					if got := st.Len(); got != records {
						t.Errorf("the store holds %d records after the refused save, want %d (nothing written)", got, records)
					}
					if sc := setCookies(resp); len(sc) != 0 {
						t.Errorf("the refused save sent %q", sc)
					}
					if !strings.Contains(h.logs.String(), ErrStale.Error()) {
						t.Errorf("the refused save did not log ErrStale:\n%s", h.logs)
					}
				}
				r, ok := h.stored(h.id())
				if !ok {
					t.Fatal("no session after the request")
				}
				for k, v := range w.vals {
					got := ""
					if i := find(r.vals, k); i >= 0 {
						got, _ = decodeEntry[string](h.m, r.vals, k, nil)
					}
					if got != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
			})
		}
	}
}

// Saves of one session in one process take turns; on a StaleReader store,
// a save whose read value another save of the turn before changed fails
// alone with ErrStale, and the saves waiting with it are written.
func TestStaleReadsInOneTurn(t *testing.T) {
	held := &heldStore{countingStore: newCountingStore(t), at: make(chan struct{}), release: make(chan struct{})}
	st := &struct {
		*heldStore
		staleReads
	}{heldStore: held}
	h := newHarness(t, Config[string, string]{Store: st})
	h.store = held.countingStore
	id := h.login("ada")
	h.change(id, "n", "old") // not through the held store
	cookie := h.cookie()
	read := make(chan struct{})
	h.mu.Lock()
	h.fn["first"] = func(c *fiber.Ctx, s *sess) error {
		<-read // the second request has read n
		s.Set("n", "first")
		return nil
	}
	h.fn["second"] = func(c *fiber.Ctx, s *sess) error {
		s.Get("n")
		close(read)
		<-held.at // the first save holds its turn
		s.Set("n", "second")
		return nil
	}
	h.fn["third"] = func(c *fiber.Ctx, s *sess) error { s.Set("c", "third"); return nil }
	h.mu.Unlock()
	codes := make(map[string]int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	send := func(route string) {
		defer wg.Done()
		req := httptest.NewRequest(http.MethodPost, "/run/"+route, nil)
		req.AddCookie(&http.Cookie{Name: "session", Value: cookie})
		resp, err := h.app.Test(req, -1)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		codes[route] = resp.StatusCode
		mu.Unlock()
	}
	wg.Add(2)
	go send("first")
	go send("second")
	<-held.at
	wg.Add(1)
	go send("third")
	sh := &h.m.saving.shards[id[0]%16]
	for { // until the second and third saves wait for the first's turn to end
		sh.mu.Lock()
		waiting := len(sh.writing[id].waiting)
		sh.mu.Unlock()
		if waiting == 2 {
			break
		}
		runtime.Gosched()
	}
	close(held.release)
	wg.Wait()
	if codes["first"] != 200 || codes["second"] != 500 || codes["third"] != 200 {
		t.Errorf("answers %v, want first 200, second 500 (ErrStale), third 200", codes)
	}
	r, _ := h.stored(id)
	if n, _ := decodeEntry[string](h.m, r.vals, "n", nil); n != "first" {
		t.Errorf("n = %q, want the first save's", n)
	}
	if c, _ := decodeEntry[string](h.m, r.vals, "c", nil); c != "third" {
		t.Errorf("c = %q, want the third save's, merged despite the second's refusal", c)
	}
	if !strings.Contains(h.logs.String(), ErrStale.Error()) {
		t.Errorf("the refused save did not log ErrStale:\n%s", h.logs)
	}
}

type staleReads struct{}

func (staleReads) StaleReads() bool { return true }
