package session

import (
	"math"
	"reflect"
	"testing"
)

// stdJSON is the JSON codec of platforms without sonic, available on every
// platform for this test.
type stdJSON struct{}

func (stdJSON) Marshal(v any) ([]byte, error)      { return stdMarshal(nil, v) }
func (stdJSON) Unmarshal(data []byte, v any) error { return stdUnmarshal(data, v) }

type codecUser struct {
	ID     int64             `json:"id"`
	Name   string            `json:"name"`
	Tags   []string          `json:"tags,omitempty"`
	Prefs  map[string]string `json:"prefs"`
	Score  float64           `json:"score"`
	Admin  bool              `json:"admin"`
	Secret string            `json:"-"`
}

// A record written on one platform is read on the other: the JSON codec is
// sonic on amd64 and arm64 and encoding/json elsewhere, and each decodes what
// the other encodes (the bytes need not be identical).
func TestJSONCodecsReadEachOther(t *testing.T) {
	values := map[string]codecUser{
		"plain":   {ID: 1, Name: "ada", Prefs: map[string]string{"theme": "dark"}},
		"escapes": {ID: -7, Name: "<b>\"quoted\" & \\ \u2028 ünïcode 🎉\x01</b>", Tags: []string{"", "a,b"}},
		"numbers": {ID: math.MaxInt64, Score: 1e-300, Admin: true, Prefs: map[string]string{}},
		"zero":    {},
	}
	codecs := map[string]Codec{"default": JSON{}, "encoding/json": stdJSON{}}
	for from, enc := range codecs {
		for to, dec := range codecs {
			for name, in := range values {
				rec := record[codecUser, string]{created: 1, deadline: 2, vals: []entry[codecUser]{{key: name, v: in, has: true}}}
				data, err := encodeRecord(enc, &rec)
				if err != nil {
					t.Fatalf("%s encodes %s: %v", from, name, err)
				}
				var back record[codecUser, string]
				if err := decodeRecord(data, &back); err != nil {
					t.Fatal(err)
				}
				var out codecUser
				if err := dec.Unmarshal(back.vals[0].raw, &out); err != nil {
					t.Fatalf("%s reads %s's %s: %v", to, from, name, err)
				}
				if !reflect.DeepEqual(in, out) {
					t.Errorf("%s -> %s, %s: got %+v, want %+v", from, to, name, out, in)
				}
			}
		}
	}
}
