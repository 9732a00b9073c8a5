package natsstore

import (
	"slices"
	"testing"
)

// TestOwnerValue: entries round-trip, those whose time has passed are
// dropped and reported, a foreign value reads as no entries, and no
// truncation panics.
func TestOwnerValue(t *testing.T) {
	es := []ownerEntry{{"a", 100}, {"", 300}, {"past", 50}, {string(make([]byte, 300)), 200}}
	v := encodeOwner(es)
	live, stale := decodeOwner(v, 49)
	if !slices.Equal(live, es) || stale {
		t.Errorf("decode at 49 = %v, %v; want every entry, none stale", live, stale)
	}
	live, stale = decodeOwner(v, 100)
	if want := []ownerEntry{es[1], es[3]}; !slices.Equal(live, want) || !stale {
		t.Errorf("decode at 100 = %v, %v; want %v, stale", live, stale, want)
	}
	if live, stale := decodeOwner(encodeOwner(nil), 0); live != nil || stale {
		t.Errorf("decode of no entries = %v, %v", live, stale)
	}
	for i := range len(v) - 1 { // nothing, or the entries before the cut
		live, stale := decodeOwner(v[:i], 0)
		if !(live == nil && (stale || i == 1)) && !slices.Equal(live, es[:len(live)]) {
			t.Errorf("decode of the first %d bytes = %v, %v", i, live, stale)
		}
	}
	for _, foreign := range []string{"", "garbage", "\x02\x00"} {
		if live, stale := decodeOwner([]byte(foreign), 0); live != nil || !stale {
			t.Errorf("decode of %q = %v, %v; want nothing, stale", foreign, live, stale)
		}
	}
}
