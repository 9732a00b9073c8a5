package session

import (
	"reflect"
	"testing"
)

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

func TestRecordMalformed(t *testing.T) {
	good, _ := encodeRecord[string, string](JSON{}, &record[string, string]{created: 1, deadline: 2, vals: []entry[string]{{key: "k", raw: []byte(`"v"`)}}})
	for name, data := range map[string][]byte{
		"nil":              nil,
		"version only":     {recordVersion},
		"future version":   append([]byte{2}, good[1:]...),
		"truncated":        good[:len(good)-1],
		"trailing byte":    append(append([]byte(nil), good...), 0),
		"huge count":       {recordVersion, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"length past end":  {recordVersion, 0, 0, 0, 0, 0, 0, 1, 0x7f, 'k'},
		"varint overflow":  {recordVersion, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"negative created": {recordVersion, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0, 0, 0},
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
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{recordVersion, 0, 0, 0, 0, 0, 0, 0, 0})
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
	})
}
