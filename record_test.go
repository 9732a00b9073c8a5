package session

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// secret32 is a CSRF secret for record tests.
var secret32 = []byte("0123456789abcdefghijklmnopqrstuv")

func TestRecordRoundTrip(t *testing.T) {
	in := record[string, string]{
		flags: flagMoved, created: 1700000000000, deadline: 1700000600000, idle: 3600000, written: 1700000001000, version: 7,
		vals:  []entry[string]{{key: "user", v: "ada", has: true}, {key: "", raw: []byte(`""`)}},
		flash: []entry[string]{{key: "notice", v: "hi", has: true}},
	}
	data, err := encodeRecord[string, string](JSON{}, &in)
	if err != nil {
		t.Fatal(err)
	}
	var out record[string, string]
	if err := decodeRecord(data, &out); err != nil {
		t.Fatal(err)
	}
	for _, es := range [][]entry[string]{in.vals, in.flash} {
		for i := range es {
			es[i].v, es[i].has = "", false // decoding is lazy
		}
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n in %+v\nout %+v", in, out)
	}
}

// TestRecordVersion1 pins the bytes of a record without a CSRF secret: they
// are what the library wrote before version 2 existed, so stored sessions
// of apps that never use the CSRF protection see no change at all, and
// such records written by older versions still load.
func TestRecordVersion1(t *testing.T) {
	const v1 = "010080d095ffbc3180d8c79fbf3100e8d795ffbc310301047573657205226164612201066e6f746963650422686922"
	golden, _ := hex.DecodeString(v1)
	r := record[string, string]{
		created: 1700000000000, deadline: 1700604800000, written: 1700000001000, version: 3,
		vals:  []entry[string]{{key: "user", raw: []byte(`"ada"`)}},
		flash: []entry[string]{{key: "notice", raw: []byte(`"hi"`)}},
	}
	data, err := encodeRecord[string, string](JSON{}, &r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, golden) {
		t.Errorf("a record without a CSRF secret changed bytes:\n got %x\nwant %s", data, v1)
	}
	var back record[string, string]
	if err := decodeRecord(golden, &back); err != nil || back.csrf != nil || back.version != 3 || len(back.vals) != 1 || string(back.flash[0].raw) != `"hi"` {
		t.Errorf("version 1 record: %v %+v", err, back)
	}

	// The same record with a secret is version 2: the secret after the
	// write version, the rest unchanged.
	r.csrf = secret32
	data2, err := encodeRecord[string, string](JSON{}, &r)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{recordVersionCSRF}, golden[1:22]...)
	want = append(append(append(want, csrfLen), secret32...), golden[22:]...)
	if !bytes.Equal(data2, want) {
		t.Errorf("version 2:\n got %x\nwant %x", data2, want)
	}
	if err := decodeRecord(data2, &back); err != nil || !bytes.Equal(back.csrf, secret32) || len(back.vals) != 1 {
		t.Errorf("version 2 record: %v %+v", err, back)
	}

	// The grace copy of a rotated-away record is version 1 again, marked
	// moved, without the secret.
	g := graceCopy(data2, r.deadline+1) // a later deadline than the record's keeps it
	wantG := append([]byte(nil), golden...)
	wantG[1] |= flagMoved
	if !bytes.Equal(g, wantG) {
		t.Errorf("grace copy of version 2:\n got %x\nwant %x", g, wantG)
	}
	if g := graceCopy(golden, r.deadline); !bytes.Equal(g, wantG) || golden[1] != 0 {
		t.Errorf("grace copy of version 1: %x (the original must not change: %x)", g, golden[1])
	}
}

func TestRecordMalformed(t *testing.T) {
	good, _ := encodeRecord[string, string](JSON{}, &record[string, string]{created: 1, deadline: 2, vals: []entry[string]{{key: "k", raw: []byte(`"v"`)}}})
	good2, _ := encodeRecord[string, string](JSON{}, &record[string, string]{created: 1, deadline: 2, csrf: secret32, vals: []entry[string]{{key: "k", raw: []byte(`"v"`)}}})
	for name, data := range map[string][]byte{
		"nil":                   nil,
		"version only":          {recordVersion},
		"future version":        append([]byte{3}, good[1:]...),
		"version 0":             append([]byte{0}, good[1:]...),
		"v1 body as version 2":  append([]byte{recordVersionCSRF}, good[1:]...),
		"v2 body as version 1":  append([]byte{recordVersion}, good2[1:]...),
		"v2 truncated":          good2[:len(good2)-1],
		"v2 secret cut short":   good2[:20],
		"v2 empty secret":       {recordVersionCSRF, 0, 1, 2, 0, 0, 0, 0, 0, 0},
		"v2 short secret":       append([]byte{recordVersionCSRF, 0, 1, 2, 0, 0, 0, 31}, append(secret32[:31:31], 0, 0)...),
		"v2 long secret":        append([]byte{recordVersionCSRF, 0, 1, 2, 0, 0, 0, 33}, append(append(secret32[:32:32], 'x'), 0, 0)...),
		"v2 secret length huge": {recordVersionCSRF, 0, 1, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"truncated":             good[:len(good)-1],
		"trailing byte":         append(append([]byte(nil), good...), 0),
		"huge count":            {recordVersion, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"length past end":       {recordVersion, 0, 0, 0, 0, 0, 0, 1, 0x7f, 'k'},
		"varint overflow":       {recordVersion, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"negative created":      {recordVersion, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0, 0, 0},
	} {
		var r record[string, string]
		if err := decodeRecord(data, &r); err == nil {
			t.Errorf("%s: decoded %+v", name, r)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	good, _ := encodeRecord[string, string](JSON{}, &record[string, string]{
		created: 1, deadline: 2, idle: 3, written: 4, version: 5,
		vals:  []entry[string]{{key: "user", raw: []byte(`"ada"`)}},
		flash: []entry[string]{{key: "n", raw: []byte(`"hi"`)}},
	})
	good2, _ := encodeRecord[string, string](JSON{}, &record[string, string]{
		flags: flagMoved, created: 1, deadline: 2, version: 5, csrf: secret32,
		vals: []entry[string]{{key: "user", raw: []byte(`"ada"`)}},
	})
	owned, _ := encodeRecord[string, string](JSON{}, &record[string, string]{
		created: 1, deadline: 2, version: 5, owner: "user-42", device: device("Firefox", "192.0.2.1"),
		vals: []entry[string]{{key: "user", raw: []byte(`"ada"`)}},
	})
	f.Add(good)
	f.Add(good2)
	f.Add(owned)
	f.Add([]byte{})
	f.Add([]byte{recordVersion, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{recordVersionCSRF, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r record[string, string]
		if decodeRecord(data, &r) != nil {
			return
		}
		// Whatever decodes re-encodes to a record that decodes the same.
		again, err := encodeRecord[string, string](JSON{}, &r)
		if err != nil {
			t.Fatal(err)
		}
		var r2 record[string, string]
		if err := decodeRecord(again, &r2); err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoded record differs: %v\n%+v\n%+v", err, r, r2)
		}
		// Its grace copy decodes to the same record, moved and without a
		// secret.
		var g record[string, string]
		if err := decodeRecord(graceCopy(again, r.deadline), &g); err != nil || !g.moved() || g.csrf != nil {
			t.Fatalf("grace copy: %v %+v", err, g)
		}
		g.flags, g.csrf = r.flags, r.csrf
		if !reflect.DeepEqual(r, g) {
			t.Fatalf("grace copy differs:\n%+v\n%+v", r, g)
		}
	})
}

// Records across releases. The files in testdata/records are records as
// this release writes them (format versions 1 and 2), made once by hand from
// the format's description (record.go) rather than by the encoder, and never
// regenerated: every later release must still read them, which
// TestRecordFixtures and TestRecordFixturesServed check in CI. A format
// change is rolled out readers first (README, "Record format and upgrades").
//
// session-cookie.txt is a session cookie for the id every fixture is served
// under, signed with fixtureKey; cookiestore-data.txt is v2-csrf.rec sealed
// for the encrypted cookie store (fixtures_test.go).

// fixtureKey signs testdata/records/session-cookie.txt.
var fixtureKey = []byte("fixture cookie key, 32 bytes long")

// fixtureID is the id of session-cookie.txt: the bytes 0 to 31.
const fixtureID = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

// fixtureDeadline is 2200-01-01, the fixtures' absolute deadline, so that
// they stay live for as long as anyone runs these tests.
const fixtureDeadline = 7258118400000

type fixture struct {
	file                             string
	format, flags                    byte
	created, deadline, idle, written int64
	version                          uint64
	csrf                             string
	vals, flash                      [][2]string // key, JSON as stored
	owner, agent, ip                 string      // SetOwner; with Config.Devices
	user, notice                     string      // what a session of strings reads
	typed                            bool        // the values are JSON objects
}

var fixtures = []fixture{
	{file: "v1-values-flash.rec", format: 1, created: 1700000000000, deadline: fixtureDeadline, written: 1700000001000, version: 3,
		vals: [][2]string{{"user", `"ada"`}, {"cart", `"3 apples"`}}, flash: [][2]string{{"notice", `"Welcome back"`}}, user: "ada", notice: "Welcome back"},
	{file: "v1-idle-override.rec", format: 1, created: 1700000000000, deadline: fixtureDeadline, idle: 30 * 24 * 3600 * 1000, written: 1700000002000, version: 12,
		vals: [][2]string{{"user", `"ada"`}}, user: "ada"},
	{file: "v1-moved.rec", format: 1, flags: flagMoved, created: 1700000000000, deadline: fixtureDeadline, written: 1700000003000, version: 5,
		vals: [][2]string{{"user", `"ada"`}}, flash: [][2]string{{"notice", `"Saved!"`}}, user: "ada", notice: "Saved!"},
	{file: "v1-flash-only.rec", format: 1, created: 1700000000000, deadline: fixtureDeadline, written: 1700000000000, version: 1,
		flash: [][2]string{{"error", `"Wrong password"`}}},
	{file: "v2-csrf.rec", format: 2, created: 1700000000000, deadline: fixtureDeadline, idle: 3600 * 1000, written: 1700000004000, version: 7,
		csrf: "0123456789abcdefghijklmnopqrstuv", vals: [][2]string{{"user", `"ada"`}, {"", `""`}}, flash: [][2]string{{"notice", `"Welcome back"`}},
		user: "ada", notice: "Welcome back"},
	{file: "v2-csrf-moved.rec", format: 2, flags: flagMoved, created: 1700000000000, deadline: fixtureDeadline, written: 1700000005000, version: 8,
		csrf: "0123456789abcdefghijklmnopqrstuv", vals: [][2]string{{"user", `"ada"`}}, user: "ada"},
	{file: "v1-typed.rec", format: 1, created: 1700000000000, deadline: fixtureDeadline, written: 1700000006000, version: 2,
		vals: [][2]string{{"user", `{"id":7,"name":"ada"}`}}, flash: [][2]string{{"notice", `{"level":"info","text":"Saved!"}`}}, typed: true},
	{file: "v1-owner.rec", format: 1, flags: flagOwner, created: 1700000000000, deadline: fixtureDeadline, written: 1700000007000, version: 4,
		owner: "user-42", vals: [][2]string{{"user", `"ada"`}}, user: "ada"},
	{file: "v1-owner-moved.rec", format: 1, flags: flagOwner | flagMoved, created: 1700000000000, deadline: fixtureDeadline, written: 1700000008000, version: 5,
		owner: "user-42", vals: [][2]string{{"user", `"ada"`}}, user: "ada"},
	{file: "v2-csrf-owner-device.rec", format: 2, flags: flagOwner, created: 1700000000000, deadline: fixtureDeadline, idle: 3600 * 1000, written: 1700000009000, version: 9,
		csrf: "0123456789abcdefghijklmnopqrstuv", owner: "user-42", agent: "Mozilla/5.0 (X11; Linux x86_64)", ip: "192.0.2.7",
		vals: [][2]string{{"user", `"ada"`}}, flash: [][2]string{{"notice", `"Welcome back"`}}, user: "ada", notice: "Welcome back"},
}

func readFixture(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "records", file))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRecordFixtures decodes every fixture record and checks all it holds.
func TestRecordFixtures(t *testing.T) {
	entries := func(es []entry[string]) [][2]string {
		var out [][2]string
		for _, e := range es {
			out = append(out, [2]string{e.key, string(e.raw)})
		}
		return out
	}
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			data := readFixture(t, fx.file)
			if data[0] != fx.format {
				t.Fatalf("format byte %d, want %d", data[0], fx.format)
			}
			var r record[string, string]
			if err := decodeRecord(data, &r); err != nil {
				t.Fatalf("this release does not read a record it wrote: %v", err)
			}
			agent, ip := r.agentIP()
			got := fixture{file: fx.file, format: data[0], flags: r.flags, created: r.created, deadline: r.deadline, idle: r.idle,
				written: r.written, version: r.version, csrf: string(r.csrf), vals: entries(r.vals), flash: entries(r.flash),
				owner: r.owner, agent: agent, ip: ip, user: fx.user, notice: fx.notice, typed: fx.typed}
			if !reflect.DeepEqual(got, fx) {
				t.Errorf("decoded\n %+v\nwant\n %+v", got, fx)
			}
			if r.moved() != (fx.flags&flagMoved != 0) {
				t.Errorf("moved() = %v", r.moved())
			}
			if fx.typed {
				type user struct {
					ID   int64  `json:"id"`
					Name string `json:"name"`
				}
				type msg struct{ Level, Text string }
				var u user
				var m msg
				if err := (JSON{}).Unmarshal(r.vals[0].raw, &u); err != nil || u != (user{7, "ada"}) {
					t.Errorf("typed value: %+v %v", u, err)
				}
				if err := (JSON{}).Unmarshal(r.flash[0].raw, &m); err != nil || m != (msg{"info", "Saved!"}) {
					t.Errorf("typed flash: %+v %v", m, err)
				}
			}
		})
	}
}

// TestRecordFixturesServed serves every fixture record of strings under the
// fixture cookie's id: the fixture cookie verifies, the session holds the
// record's values and flash, and a grace copy (moved) stays read-only: a
// write to it is dropped and its bytes do not change.
func TestRecordFixturesServed(t *testing.T) {
	tok := strings.TrimSpace(string(readFixture(t, "session-cookie.txt")))
	if id, key, ok := newSigner("session", [][]byte{fixtureKey}).verify([]byte(tok)); !ok || string(id) != fixtureID || key != 0 {
		t.Fatalf("the fixture cookie does not verify: %q %v", id, ok)
	}
	for _, fx := range fixtures {
		if fx.typed {
			continue
		}
		t.Run(fx.file, func(t *testing.T) {
			h := newHarness(t, Config[string, string]{Secrets: [][]byte{fixtureKey}})
			data := readFixture(t, fx.file)
			if err := h.store.Store.Set(context.Background(), fixtureID, data, time.Hour); err != nil {
				t.Fatal(err)
			}
			var id, user, notice, errFlash string
			resp := h.do(func(c *fiber.Ctx, s *sess) error {
				id = s.ID()
				user, _ = s.Get("user")
				notice, _ = s.GetFlash("notice")
				errFlash, _ = s.GetFlash("error")
				s.Set("visits", "1")
				return nil
			}, "session="+tok)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if id != fixtureID || user != fx.user || notice != fx.notice {
				t.Errorf("session %s: user %q, notice %q; want %s, %q, %q", id, user, notice, fixtureID, fx.user, fx.notice)
			}
			if fx.file == "v1-flash-only.rec" && errFlash != "Wrong password" {
				t.Errorf("flash %q", errFlash)
			}
			after, err := h.store.Store.Get(context.Background(), fixtureID)
			if err != nil {
				t.Fatal(err)
			}
			var r record[string, string]
			if err := decodeRecord(after, &r); err != nil {
				t.Fatal(err)
			}
			switch moved := fx.flags&flagMoved != 0; {
			case moved && !bytes.Equal(after, data):
				t.Errorf("a grace copy was written: %x", after)
			case !moved && (find(r.vals, "visits") < 0 || len(r.flash) != 0 || string(r.csrf) != fx.csrf || r.idle != fx.idle):
				t.Errorf("the record written back: %+v", r)
			}
		})
	}
}

// TestRecordFromNewerRelease checks what a rolling deploy needs of an older
// instance: a record in a format version it does not know is left alone.
// The request gets a fresh session under a new id, whatever it does with it,
// and the bytes under the old id do not change: the newer instances still
// find their record there.
func TestRecordFromNewerRelease(t *testing.T) {
	v1 := readFixture(t, "v1-values-flash.rec")
	v2 := readFixture(t, "v2-csrf.rec")
	leftAlone(t, map[string][]byte{
		"format 3":                      withByte(v1, 0, 3),
		"format 3 with a longer header": append(withByte(v1, 0, 3), 0x05, 0x00),
		"format 255":                    withByte(v2, 0, 255),
	})
}

// TestRecordUnknownFlags is TestRecordFromNewerRelease for a record whose
// flags byte has a bit this release does not know (flagMoved and flagOwner
// are the only ones): a newer release may give a record a meaning this one would destroy
// by writing it back without the flag, so it is not read either.
func TestRecordUnknownFlags(t *testing.T) {
	v1 := readFixture(t, "v1-values-flash.rec")
	v2 := readFixture(t, "v2-csrf.rec")
	owned := readFixture(t, "v1-owner.rec")
	for _, rec := range []struct {
		data  []byte
		flags byte
	}{{v1, 1 << 2}, {v1, flagMoved | 1<<7}, {v1, 0xff}, {owned, flagOwner | 1<<2}} {
		var r record[string, string]
		if decodeRecord(withByte(rec.data, 1, rec.flags), &r) == nil {
			t.Errorf("decodeRecord reads flags %#x: it must refuse the bits other than flagMoved and flagOwner (errRecord)", rec.flags)
		}
	}
	leftAlone(t, map[string][]byte{
		"v1, an unknown flag":           withByte(v1, 1, 1<<2),
		"v1 owned, an unknown flag":     withByte(owned, 1, flagOwner|1<<6),
		"v1, moved and an unknown flag": withByte(v1, 1, flagMoved|1<<7),
		"v2, an unknown flag":           withByte(v2, 1, 1<<3),
		"v2, every flag bit":            withByte(v2, 1, 0xff),
	})
}

// withByte returns a copy of b with b[i] = c.
func withByte(b []byte, i int, c byte) []byte {
	b = bytes.Clone(b)
	b[i] = c
	return b
}

// leftAlone stores each record under an id and serves a request with a
// cookie for that id whose handler writes, flashes, destroys or rotates: the
// handler reads nothing, the response names a new id, the session is stored
// there, and the bytes under the old id are unchanged.
func leftAlone(t *testing.T, records map[string][]byte) {
	t.Helper()
	actions := map[string]func(s *sess){
		"write":               func(s *sess) { s.Set("user", "mallory") },
		"flash":               func(s *sess) { s.Flash("notice", "hi") },
		"destroy":             func(s *sess) { s.Destroy(); s.Set("user", "mallory") },
		"RegenerateID(true)":  func(s *sess) { s.RegenerateID(true); s.Set("user", "mallory") },
		"RegenerateID(false)": func(s *sess) { s.RegenerateID(false); s.Set("user", "mallory") },
	}
	for rname, data := range records {
		for aname, act := range actions {
			t.Run(rname+"/"+aname, func(t *testing.T) {
				h := newHarness(t, Config[string, string]{})
				old := newID()
				if err := h.store.Store.Set(context.Background(), old, data, time.Hour); err != nil {
					t.Fatal(err)
				}
				var id, user string
				h.do(func(c *fiber.Ctx, s *sess) error {
					user, _ = s.Get("user")
					act(s)
					id = s.ID()
					return nil
				}, "session="+h.m.signer.sign(old))
				if user != "" {
					t.Errorf("a record this release cannot read was read: user %q", user)
				}
				if id == old || h.id() != id {
					t.Errorf("session %s, cookie %s; want a new id, not %s", id, h.id(), old)
				}
				after, err := h.store.Store.Get(context.Background(), old)
				if err != nil || !bytes.Equal(after, data) {
					t.Errorf("the record under the old id changed: %x, %v; want %x", after, err, data)
				}
				if r, ok := h.stored(id); !ok || r.moved() {
					t.Errorf("the new session was not stored: %+v", r)
				}
			})
		}
	}
}
