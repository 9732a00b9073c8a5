package session

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

type selfDecoding struct{ V any }

func (s *selfDecoding) UnmarshalJSON(b []byte) error { return nil }

type tree struct {
	Name     string
	Children []tree
	Parent   *tree
}

type withHidden struct {
	Name   string
	hidden any
	Skip   any `json:"-"`
}

func TestInterfaceIn(t *testing.T) {
	for _, tc := range []struct {
		v    any // a pointer to a value of the type
		want string
	}{
		{new(any), "interface {}"},
		{new(error), "error"},
		{new(map[string]any), "[key]"},
		{new(struct{ A, B any }), ".A"},
		{new([]struct{ X map[int]any }), "[].X[key]"},
		{new(*[]any), "[]"},
		{new(string), ""},
		{new(User), ""},
		{new(json.RawMessage), ""},
		{new(selfDecoding), ""},
		{new(tree), ""},
		{new(withHidden), ""},
	} {
		typ := reflect.TypeOf(tc.v).Elem()
		got, ok := interfaceIn(typ, "", map[reflect.Type]bool{})
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%v: got %q, %v; want %q", typ, got, ok, tc.want)
		}
	}
}

type User struct {
	ID   int64
	Name string
}

// NewManager warns about V = any with the JSON codec, once, and not with a
// concrete V or another codec.
func TestUntypedWarning(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	count := func() int { return strings.Count(logs.String(), "cannot restore the concrete types") }
	if _, err := NewManager(Config[any, string]{Secrets: [][]byte{testKey}, Logger: log}); err != nil || count() != 1 {
		t.Errorf("V = any: err %v, warned %d times, logs %q", err, count(), logs.String())
	}
	if _, err := NewManager(Config[User, map[string]any]{Secrets: [][]byte{testKey}, Logger: log}); err != nil || count() != 2 {
		t.Errorf("F = map[string]any: err %v, warned %d times", err, count())
	}
	if _, err := NewManager(Config[User, string]{Secrets: [][]byte{testKey}, Logger: log}); err != nil || count() != 2 {
		t.Errorf("concrete types warned: %q", logs.String())
	}
	if _, err := NewManager(Config[any, string]{Secrets: [][]byte{testKey}, Logger: log, Codec: stdJSON{}}); err != nil || count() != 2 {
		t.Errorf("another codec warned: %q", logs.String())
	}
}
