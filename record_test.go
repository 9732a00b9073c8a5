package session

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
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
	f.Add(good)
	f.Add(good2)
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
