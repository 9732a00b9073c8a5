package session

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestShareable(t *testing.T) {
	type flat struct {
		ID   int64
		Name string
		Tags [2]string
		in   bool
	}
	type nested struct {
		F flat
		P *int
	}
	for _, tc := range []struct {
		v    any
		want bool
	}{
		{0, true}, {"", true}, {3.5, true}, {flat{}, true}, {[3]flat{}, true}, {struct{}{}, true},
		{new(int), false}, {[]int{}, false}, {map[string]int{}, false}, {nested{}, false},
		{[]byte{}, false}, {func() {}, false}, {make(chan int), false}, {[1][]int{}, false},
		{struct{ E error }{}, false}, {struct{ A any }{}, false},
	} {
		if got := shareable(reflect.TypeOf(tc.v)); got != tc.want {
			t.Errorf("shareable(%T) = %v, want %v", tc.v, got, tc.want)
		}
	}
	if newDecoded[map[string]int]() != nil || newDecoded[any]() != nil {
		t.Error("a cache of decoded values for a type a request can change in place")
	}
}

// countingCodec is the JSON codec, counting the values it decodes.
type countingCodec struct {
	JSON
	decodes atomic.Int64
}

func (c *countingCodec) Unmarshal(data []byte, v any) error {
	c.decodes.Add(1)
	return c.JSON.Unmarshal(data, v)
}

// A value read unchanged by request after request is decoded by the first
// two only; one that changes with every write, and one longer than
// maxDecoded, are decoded by every request.
func TestDecodedValues(t *testing.T) {
	long := strings.Repeat("x", maxDecoded)
	for _, tc := range []struct {
		name    string
		handler func(s *sess, i int) string // returns what the request read
		want    func(i int) string
		decodes int64 // in 5 requests
	}{
		{"Unchanged", func(s *sess, i int) string { v, _ := s.Get("user"); return v }, func(int) string { return "ada" }, 2},
		{"Long", func(s *sess, i int) string {
			if i == 0 {
				s.Set("long", long)
				return long
			}
			v, _ := s.Get("long")
			return v
		}, func(int) string { return long }, 4},
		{"Changing", func(s *sess, i int) string {
			return s.Update("n", func(old string) string { return old + "+" })
		}, func(i int) string { return strings.Repeat("+", i+1) }, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			codec := &countingCodec{}
			h := newHarness(t, Config[string, string]{Codec: codec})
			h.login("ada")
			before := codec.decodes.Load()
			for i := range 5 {
				var got string
				resp := h.do(func(c *fiber.Ctx, s *sess) error { got = tc.handler(s, i); return nil })
				if resp.StatusCode != 200 || got != tc.want(i) {
					t.Fatalf("request %d: %d, read %.20q, want %.20q", i, resp.StatusCode, got, tc.want(i))
				}
			}
			if n := codec.decodes.Load() - before; n != tc.decodes {
				t.Errorf("%d values decoded in 5 requests, want %d", n, tc.decodes)
			}
		})
	}
}

// Requests decoding values at once all get the right ones, whichever keeps
// its decoding in a slot.
func TestDecodedConcurrent(t *testing.T) {
	type val struct {
		ID   int64
		Name string
	}
	d := newDecoded[val]()
	var raws [][]byte
	for i := range 50 {
		raws = append(raws, fmt.Appendf(nil, `{"ID":%d,"Name":"user%d"}`, i, i))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 2000 {
				i := (n*7 + g) % len(raws)
				var v val
				if err := d.decode(JSON{}, raws[i], &v); err != nil {
					t.Error(err)
					return
				}
				if v.ID != int64(i) || v.Name != fmt.Sprint("user", i) {
					t.Errorf("%s decoded as %+v", raws[i], v)
					return
				}
			}
		}()
	}
	wg.Wait()
}
