package session

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/fibersession/session/stores/memory"
)

// Fuzz targets for the parsers of what a request carries (FuzzToken,
// FuzzOrigin), of what a store holds (FuzzLoadRecord; FuzzDecodeRecord in
// record_test.go) and of the values in it (FuzzCodec). FuzzVerify
// (signer_test.go), FuzzCSRFCheck (csrf_test.go) and FuzzOpen
// (stores/cookiestore) cover the rest. Their seeds are in code (f.Add) and
// in testdata/fuzz/<target>, which go test runs as ordinary tests; run one
// for longer with
//
//	go test -run '^$' -fuzz '^FuzzToken$' -fuzztime 10m -parallel 1 .

// fuzzOldKey is a second, older key of the fuzz targets' managers.
var fuzzOldKey = []byte("an older key for the fuzz tests!")

// fuzzIDs are ids whose tokens the seeds carry.
var fuzzIDs = []string{strings.Repeat("A", idLen), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", strings.Repeat("-_", idLen/2) + "Q"}

// FuzzToken parses a request, as fasthttp reads it off the wire, with
// arbitrary Cookie, X-Session (twice) and Host headers, and checks the id
// the manager takes from it against a model of the rules: the header
// transport, when a non-empty value of it is present, decides alone; among
// the values of the header (or else of the cookies named "session"), those
// that verify must all name one id, or the session is fresh. Whatever the
// input, no panic, and plainHTTP reads the Host without one.
func FuzzToken(f *testing.F) {
	m, err := NewManager(Config[string, string]{
		Secrets: [][]byte{testKey, fuzzOldKey}, Header: "X-Session",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	a, b := m.signer.sign(fuzzIDs[0]), m.signer.sign(fuzzIDs[1])
	old := newSigner("session", [][]byte{fuzzOldKey}).sign(fuzzIDs[2])
	f.Add("session="+a, "", "", "example.com")
	f.Add("session="+a+"; session="+b, "", "", "localhost:3000")
	f.Add("session="+a+"; session="+a, "", "", "[::1]:80")
	f.Add("session=x; session="+old, "", "", "127.0.0.1")
	f.Add("", a, b, "example.com")
	f.Add("", a, a, "example.com")
	f.Add("session="+a, b, "", "app.localhost")
	f.Add("session="+a, "", old, "example.com:8080")
	f.Add("session="+a, a+", "+b, "", "example.com")
	f.Add("session=\""+a+"\"", " "+a, "\t", "[fe80::1%25en0]")
	f.Fuzz(func(t *testing.T, cookie, h1, h2, host string) {
		raw := "GET / HTTP/1.1\r\nHost: " + host + "\r\nCookie: " + cookie + "\r\nX-Session: " + h1 + "\r\nx-session: " + h2 + "\r\n\r\n"
		var req fasthttp.Request // its headers: a body is no concern here
		if req.Header.Read(bufio.NewReader(strings.NewReader(raw))) != nil {
			return // fasthttp refuses it before any handler
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, nil)
		id, key, ok := m.token(&ctx)
		_ = plainHTTP(&ctx)

		// The model: values collected another way (VisitAll, not PeekAll).
		var header [][]byte
		ctx.Request.Header.VisitAll(func(k, v []byte) {
			if strings.EqualFold(string(k), "X-Session") && len(v) > 0 {
				header = append(header, bytes.Clone(v))
			}
		})
		values := header
		if len(header) == 0 {
			ctx.Request.Header.VisitAllCookie(func(k, v []byte) {
				if string(k) == "session" {
					values = append(values, bytes.Clone(v))
				}
			})
		}
		ids := map[string]int{} // id -> the highest key that verified it
		for _, v := range values {
			if vid, vkey, vok := m.signer.verify(v); vok {
				ids[string(vid)] = max(ids[string(vid)], vkey)
			}
		}
		wantOK := len(ids) == 1
		if ok != wantOK {
			t.Fatalf("ok = %v; want %v (valid ids %v in %q)", ok, wantOK, ids, values)
		}
		if ok {
			if wk, found := ids[string(id)]; !found || wk != key {
				t.Fatalf("id %q key %d; want one of %v", id, key, ids)
			}
			if tok := newSigner("session", [][]byte{m.cfg.Secrets[key]}).sign(string(id)); !strings.Contains(raw, tok) {
				t.Fatalf("id %q verified, but the request does not carry its token %q", id, tok)
			}
		}
	})
}

// FuzzOrigin checks the origin layer of the CSRF protection on arbitrary
// Origin, Sec-Fetch-Site, own-origin and trusted-origin strings: no panic;
// sameOrigin is symmetric, and an origin is the same as itself exactly when
// it parses; a trusted origin that the configuration accepts is trusted in
// any ASCII letter case; and checkOrigin passes a request a browser says is
// same-origin, refuses one it says is cross-site from an untrusted origin,
// and decides one without Sec-Fetch-Site by its Origin.
func FuzzOrigin(f *testing.F) {
	f.Add("https://example.com", "same-origin", "https://example.com", "https://trusted.example")
	f.Add("https://evil.example", "cross-site", "https://example.com", "https://evil.example")
	f.Add("https://EXAMPLE.com:443", "", "https://example.com", "")
	f.Add("http://example.com:80", "", "http://example.com:", "http://[::1]:8080")
	f.Add("null", "same-site", "https://example.com", "null")
	f.Add("https://user@example.com", "", "https://example.com", "https://example.com/")
	f.Add("", "none", "x", "https://a.example?q")
	m, err := NewManager(Config[string, string]{Secrets: [][]byte{testKey}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, origin, site, self, trusted string) {
		scheme, host, ok := splitOrigin(origin)
		if ok && (scheme == "" || host == "" || strings.ContainsAny(host, "/?#@\\ \t")) {
			t.Fatalf("splitOrigin(%q) = %q, %q", origin, scheme, host)
		}
		if sameOrigin(origin, self) != sameOrigin(self, origin) {
			t.Fatalf("sameOrigin(%q, %q) is not symmetric", origin, self)
		}
		if sameOrigin(origin, origin) != ok || ok && !sameOrigin(origin, asciiUpper(origin)) {
			t.Fatalf("sameOrigin(%q, itself) = %v, parses %v", origin, sameOrigin(origin, origin), ok)
		}
		p, err := NewCSRF(m, CSRFConfig{TrustedOrigins: []string{trusted}})
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("NewCSRF: %v", err)
			}
			if p, err = NewCSRF(m, CSRFConfig{}); err != nil {
				t.Fatal(err)
			}
		} else if !p.isTrusted(trusted) || !p.isTrusted(asciiUpper(trusted)) {
			t.Fatalf("the trusted origin %q is not trusted", trusted)
		}
		ctx := newFastCtx("POST", "/", map[string]string{"Origin": origin, "Sec-Fetch-Site": site}, nil, "")
		// What the request carries after fasthttp's header handling.
		origin, site = string(ctx.Request.Header.Peek("Origin")), string(ctx.Request.Header.Peek("Sec-Fetch-Site"))
		err = p.checkOrigin(ctx, self)
		if err != nil && !errors.Is(err, ErrCSRF) {
			t.Fatalf("checkOrigin: %v", err)
		}
		var want bool // passes
		switch site {
		case "same-origin", "none":
			want = true
		case "":
			want = origin == "" || sameOrigin(origin, self) || p.isTrusted(origin)
		default:
			want = p.isTrusted(origin)
		}
		if (err == nil) != want {
			t.Fatalf("Origin %q, Sec-Fetch-Site %q, own origin %q, trusted %q: %v", origin, site, self, trusted, err)
		}
	})
}

// asciiUpper returns s with its ASCII letters in upper case, and nothing
// else changed.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzLoadRecord serves a request whose valid cookie names an id under
// which the store holds arbitrary bytes; the handler reads every value and
// flash message (decoding them with the codec), then writes, flashes,
// destroys, rotates or does nothing. No panic, whatever the bytes; and a
// record this release cannot read is left exactly as it was while the
// request gets a fresh session under a new id.
func FuzzLoadRecord(f *testing.F) {
	good, _ := encodeRecord[string, string](JSON{}, &record[string, string]{
		created: 1, deadline: 1 << 50, written: 1, version: 3,
		vals:  []entry[string]{{key: "user", raw: []byte(`"ada"`)}, {key: "n", raw: []byte(`1`)}},
		flash: []entry[string]{{key: "notice", raw: []byte(`"hi"`)}},
	})
	csrf, _ := encodeRecord[string, string](JSON{}, &record[string, string]{
		created: 1, deadline: 1 << 50, idle: 1000, csrf: secret32, vals: []entry[string]{{key: "user", raw: []byte(`"\u00e9\ud83d\ude00"`)}},
	})
	expired, _ := encodeRecord[string, string](JSON{}, &record[string, string]{created: 1, deadline: 2, vals: []entry[string]{{key: "user", raw: []byte(`"ada"`)}}})
	moved := bytes.Clone(good)
	moved[1] |= flagMoved
	for act := range uint8(5) {
		f.Add(good, act)
		f.Add(csrf, act)
		f.Add(expired, act)
		f.Add(moved, act)
		f.Add(append([]byte{3}, good[1:]...), act)
		f.Add([]byte{}, act)
	}
	st := memory.New(memory.Config{CleanupInterval: -1})
	f.Cleanup(func() { st.Close() })
	m, err := NewManager(Config[string, string]{Secrets: [][]byte{testKey}, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, act uint8) {
		bg := context.Background()
		id := newID()
		defer st.Delete(bg, id)
		if err := st.Set(bg, id, data, time.Hour); err != nil {
			t.Fatal(err)
		}
		var got string
		h := m.FastHTTP(func(ctx *fasthttp.RequestCtx) {
			s, err := m.FromRequestCtx(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range s.Keys() {
				s.Get(k)
			}
			for _, k := range s.FlashKeys() {
				s.GetFlash(k)
			}
			switch act % 5 {
			case 1:
				s.Set("user", "mallory")
			case 2:
				s.Flash("notice", "hi")
			case 3:
				s.Destroy()
			case 4:
				s.RegenerateID(act&8 != 0)
			}
			got = s.ID()
		}, nil)
		ctx := newFastCtx("POST", "/", nil, map[string]string{"session": m.signer.sign(id)}, "")
		h(ctx)
		defer st.Delete(bg, got)
		var r record[string, string]
		if decodeRecord(data, &r) == nil {
			return // a record this release reads: its own tests say what happens
		}
		if after, err := st.Get(bg, id); err != nil || !bytes.Equal(after, data) {
			t.Fatalf("the record under the old id changed: %x, %v; was %x", after, err, data)
		}
		if got == id {
			t.Fatal("an unreadable record's id was kept")
		}
	})
}

// fuzzVal is a value type with the shapes apps store: numbers, strings,
// slices, maps, pointers and nesting. No field is omitempty, which would
// turn an empty map or slice into a nil one on the way through.
type fuzzVal struct {
	ID    int64              `json:"id"`
	Name  string             `json:"name"`
	Tags  []string           `json:"tags"`
	Score map[string]float64 `json:"score"`
	Next  *fuzzVal           `json:"next"`
	Any   any                `json:"any"`
}

// FuzzCodec decodes arbitrary bytes as a stored value with the JSON codec,
// into a string, a struct and an interface: no panic, and a value that
// decodes re-encodes to bytes that decode to the same value. Where sonic
// is the codec, encoding/json must read what sonic writes and the other way
// round (the JSON codec's promise), for values whose strings are UTF-8.
func FuzzCodec(f *testing.F) {
	f.Add([]byte(`"ada"`))
	f.Add([]byte(`{"id":7,"name":"ada","tags":["a","b"],"score":{"x":1.5},"next":{"id":8},"any":[1,"x",null,true,{"k":{}}]}`))
	f.Add([]byte(`"\u00e9\ud83d\ude00\u0000<>&"`))
	f.Add([]byte(`{"id":9223372036854775807,"name":"\"","any":1e308}`))
	f.Add([]byte(`[1,2`))
	f.Add([]byte(`"\xff"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		codecRoundTrip[string](t, data)
		codecRoundTrip[fuzzVal](t, data)
		codecRoundTrip[any](t, data)
	})
}

func codecRoundTrip[T any](t *testing.T, data []byte) {
	var c JSON
	var v T
	if c.Unmarshal(bytes.Clone(data), &v) != nil {
		return
	}
	enc, err := c.Marshal(&v)
	if err != nil {
		return // a value sonic reads but will not write (say, a string that is not UTF-8)
	}
	var again T
	if err := c.Unmarshal(enc, &again); err != nil || !reflect.DeepEqual(v, again) {
		t.Fatalf("%T %q: re-encoded as %q, which decodes to %#v (%v), not %#v", v, data, enc, again, err, v)
	}
	if !validStrings(reflect.ValueOf(v)) {
		return
	}
	var std T
	if err := stdUnmarshal(enc, &std); err != nil || !reflect.DeepEqual(v, std) {
		t.Fatalf("%T: encoding/json reads %q as %#v (%v), not %#v", v, enc, std, err, v)
	}
	senc, err := stdMarshal(nil, &v)
	if err != nil {
		t.Fatalf("encoding/json does not write %#v: %v", v, err)
	}
	var back T
	if err := c.Unmarshal(senc, &back); err != nil || !reflect.DeepEqual(v, back) {
		t.Fatalf("%T: the codec reads encoding/json's %q as %#v (%v), not %#v", v, senc, back, err, v)
	}
}

// validStrings reports whether every string in v is UTF-8.
func validStrings(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return utf8.ValidString(v.String())
	case reflect.Pointer, reflect.Interface:
		return v.IsNil() || validStrings(v.Elem())
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if !validStrings(v.Index(i)) {
				return false
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if !validStrings(it.Key()) || !validStrings(it.Value()) {
				return false
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if !validStrings(v.Field(i)) {
				return false
			}
		}
	}
	return true
}
