package storetest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fibersession/session"
)

func (s *suite) testBasic(t *testing.T) {
	st := s.store(t) // records have ids of their own: one store serves every subtest

	t.Run("RoundTrip", func(t *testing.T) {
		id, data := newID(t), []byte("round trip")
		set(t, st, id, data, longTTL)
		wantData(t, st, id, data)
		wantData(t, st, id, data) // a Get does not consume the record
	})

	t.Run("GetMissing", func(t *testing.T) {
		got, err := st.Get(ctx, newID(t))
		if !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get of a missing id = %s, %v; want ErrNotFound", describe(got), err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		id, other := newID(t), newID(t)
		set(t, st, id, []byte("doomed"), longTTL)
		set(t, st, other, []byte("bystander"), longTTL)
		if err := st.Delete(ctx, id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		wantNotFound(t, st, id)
		wantData(t, st, other, []byte("bystander"))
		if err := st.Delete(ctx, id); err != nil {
			t.Errorf("second Delete of the same id: %v, want nil", err)
		}
	})

	t.Run("DeleteMissing", func(t *testing.T) {
		id := newID(t)
		if err := st.Delete(ctx, id); err != nil {
			t.Fatalf("Delete of a missing id: %v, want nil", err)
		}
		wantNotFound(t, st, id)
	})

	t.Run("SetReplaces", func(t *testing.T) {
		short := []byte("short")
		long := bytes.Repeat([]byte("long value "), 100)
		for _, step := range []struct {
			name string
			seq  [][]byte
		}{
			{"LongerWithShorter", [][]byte{long, short}},
			{"ShorterWithLonger", [][]byte{short, long}},
			{"SameLength", [][]byte{[]byte("aaaaa"), []byte("bbbbb")}},
		} {
			t.Run(step.name, func(t *testing.T) {
				id := newID(t)
				for _, v := range step.seq {
					set(t, st, id, v, longTTL)
				}
				wantData(t, st, id, step.seq[len(step.seq)-1])
			})
		}
	})

	t.Run("SetAfterDelete", func(t *testing.T) {
		id := newID(t)
		set(t, st, id, []byte("first"), longTTL)
		if err := st.Delete(ctx, id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		set(t, st, id, []byte("second"), longTTL)
		wantData(t, st, id, []byte("second"))
	})
}

func (s *suite) testValues(t *testing.T) {
	all := make([]byte, 4*256) // every byte value, NULs and invalid UTF-8 included
	for i := range all {
		all[i] = byte(i)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"OneByte", []byte{'x'}},
		{"OneZeroByte", []byte{0}},
		{"AllByteValues", all},
		{"OneMiB", randBytes(t, 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := s.store(t)
			id := newID(t)
			set(t, st, id, tc.data, longTTL)
			wantData(t, st, id, tc.data)
		})
	}
}

// testIDs writes 43-character ids that differ from one another in a single
// character, at the start, middle and end, taking every base64url character
// there (so also ids differing only in letter case or in '-' against '_'),
// and checks that each keeps its own record.
func (s *suite) testIDs(t *testing.T) {
	st := s.store(t)
	base := newID(t)
	if len(base) != 43 {
		t.Fatalf("id length %d, want 43", len(base))
	}
	seen := make(map[string]bool)
	var ids []string
	for _, pos := range []int{0, 21, 42} {
		for i := range len(alphabet) {
			id := base[:pos] + alphabet[i:i+1] + base[pos+1:]
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	value := func(id string) []byte { return []byte("record of " + id) }
	for _, id := range ids {
		set(t, st, id, value(id), longTTL)
	}
	for _, id := range ids {
		wantData(t, st, id, value(id))
	}
	// Deleting one leaves its neighbours alone.
	if err := st.Delete(ctx, ids[0]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, st, ids[0])
	for _, id := range ids[1:] {
		wantData(t, st, id, value(id))
	}
}
