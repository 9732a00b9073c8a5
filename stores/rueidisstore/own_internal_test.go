package rueidisstore

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/fibersession/session"
)

// TestMarks: a mark matches the write it stands for and nothing else; a
// Get forgets only the mark it checked; a mark past its life is gone.
func TestMarks(t *testing.T) {
	w := newWrites(time.Minute)
	w.add("k", markWritten, []byte("abc"))
	m, plain, _ := w.lookup("k")
	if m == nil || plain {
		t.Fatalf("lookup after a write = %v, %v; want the mark", m, plain)
	}
	for _, tc := range []struct {
		data []byte
		err  error
		want bool
	}{
		{[]byte("abc"), nil, true},
		{[]byte("abd"), nil, false},
		{[]byte("ab"), nil, false},
		{nil, session.ErrNotFound, false},
		{nil, errors.New("i/o"), false},
	} {
		if got := m.matches(w.seed, tc.data, tc.err); got != tc.want {
			t.Errorf("matches(%q, %v) = %v, want %v", tc.data, tc.err, got, tc.want)
		}
	}
	w.add("k", markDeleted, nil) // a later write: the Get that checked the first must not forget it
	w.forget("k", m.seq)
	d, _, _ := w.lookup("k")
	if d == nil || d.kind != markDeleted || !d.matches(w.seed, nil, session.ErrNotFound) || d.matches(w.seed, []byte("abc"), nil) {
		t.Fatalf("the delete's mark = %+v", d)
	}
	w.forget("k", d.seq)
	if m, _, _ := w.lookup("k"); m != nil {
		t.Errorf("mark after forget = %+v", m)
	}
	w.add("u", markUnknown, nil)
	if u, _, _ := w.lookup("u"); u == nil || u.matches(w.seed, nil, session.ErrNotFound) || u.matches(w.seed, []byte{}, nil) {
		t.Errorf("an unknown mark = %+v matches a read", u)
	}

	old := newWrites(time.Minute)
	old.life = -1 // every mark is past its life at once
	old.add("k", markWritten, []byte("x"))
	if m, plain, _ := old.lookup("k"); m != nil || plain {
		t.Errorf("lookup of an expired mark = %+v, %v", m, plain)
	}
}

// TestMarksBounded: writing 200,000 keys keeps at most marksPerShard marks
// a shard, and every key written stays covered, by its mark or by plain
// GETs for its shard.
func TestMarksBounded(t *testing.T) {
	w := newWrites(time.Minute)
	const n = 200_000
	for i := range n {
		w.add(strconv.Itoa(i), markWritten, []byte("x"))
	}
	overflowed := 0
	for i := range w.shard {
		if l := len(w.shard[i].marks); l > marksPerShard {
			t.Errorf("shard %d holds %d marks, more than %d", i, l, marksPerShard)
		}
		if w.shard[i].plain > 0 {
			overflowed++
		}
	}
	if overflowed == 0 {
		t.Fatal("no shard overflowed: the test shows nothing")
	}
	for i := range n {
		if m, plain, _ := w.lookup(strconv.Itoa(i)); m == nil && !plain {
			t.Fatalf("key %d is neither marked nor read with plain GETs", i)
		}
	}
}

// TestSuspect: a failure makes every lookup plain until the plain GET sent
// after it succeeds; a success of a GET sent before a later failure does
// not end that one.
func TestSuspect(t *testing.T) {
	w := newWrites(time.Minute)
	w.fail()
	_, plain, epoch := w.lookup("k")
	if !plain || epoch == 0 {
		t.Fatalf("lookup after a failure = plain %v, epoch %d", plain, epoch)
	}
	w.fail() // a later failure
	w.recovered(epoch)
	_, plain, epoch2 := w.lookup("k")
	if !plain || epoch2 == epoch {
		t.Fatalf("a success of a GET sent before the last failure ended the suspicion")
	}
	w.recovered(epoch2)
	if _, plain, _ := w.lookup("k"); plain {
		t.Error("still suspect after a plain GET succeeded")
	}
}
