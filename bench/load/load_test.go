package main

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
)

func memoryVariants(t *testing.T) []variant {
	var vs []variant
	for _, name := range []string{"baseline", "ours/memory", "fiber/memory"} {
		v, ok := findVariant(name)
		if !ok {
			t.Fatalf("no variant %q", name)
		}
		vs = append(vs, v)
	}
	return vs
}

// TestLoad runs the tool briefly against the memory variants: every request
// answers as it must and no acknowledged write is lost.
func TestLoad(t *testing.T) {
	o := Options{Users: 8, Duration: 800 * time.Millisecond, ReadDuration: 400 * time.Millisecond, Warmup: 100 * time.Millisecond, Seed: 1}
	if testing.Short() {
		o.Duration, o.ReadDuration, o.Warmup = 500*time.Millisecond, 200*time.Millisecond, 0
	}
	rs := Run(o, memoryVariants(t))
	for _, r := range rs {
		switch {
		case r.Skipped != "":
			t.Errorf("%s skipped: %s", r.Variant, r.Skipped)
		case r.Mixed.Requests == 0 || r.Read.Requests == 0:
			t.Errorf("%s: %d mixed and %d read requests", r.Variant, r.Mixed.Requests, r.Read.Requests)
		case r.Errors != 0 || r.Lost != 0:
			t.Errorf("%s: %d errors, %d lost writes: %q", r.Variant, r.Errors, r.Lost, r.Samples)
		}
	}
	var out strings.Builder
	if !report(&out, "test", rs) {
		t.Errorf("report says the targets were missed:\n%s", out.String())
	}
	for _, want := range []string{"| ours/memory |", "read route: ours/memory at ", "× fiber/memory"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	checkSVG(t, svgChart("test", "a <test> & more", rs))
}

// checkSVG checks that s is well-formed XML with an svg root and a bar per
// variant and panel.
func checkSVG(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	root, rects := "", 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG: %v\n%s", err, s)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "rect" {
				rects++
			}
		}
	}
	if root != "svg" || rects < 1+4*3 {
		t.Errorf("SVG: root %q, %d rects", root, rects)
	}
}

// forgetful is a store that silently drops every fifth write: the tool must
// count the acknowledged counter values it loses, so that the zero of
// TestLoad means something.
type forgetful struct {
	session.Store
	n atomic.Int64
}

func (f *forgetful) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if f.n.Add(1)%5 == 0 {
		return nil
	}
	return f.Store.Set(ctx, id, data, ttl)
}

func TestLostWritesCounted(t *testing.T) {
	v := variant{name: "ours/forgetful", stateful: true, build: func(string) (*fiber.App, func(), error) {
		st := memory.New(memory.Config{})
		app, release, err := oursApp(&forgetful{Store: st}, func() { _ = st.Close() })
		return app, release, err
	}}
	rs := Run(Options{Users: 4, Duration: 500 * time.Millisecond, ReadDuration: 100 * time.Millisecond, Seed: 1}, []variant{v})
	if r := rs[0]; r.Skipped != "" || r.Lost == 0 {
		t.Errorf("a store that drops writes: %d lost writes, %d errors (skipped: %q)", r.Lost, r.Errors, r.Skipped)
	}
}
