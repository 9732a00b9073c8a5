package session

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		b, err := base64.RawURLEncoding.DecodeString(id)
		if len(id) != idLen || err != nil || len(b) != idBytes {
			t.Fatalf("id %q: %d chars, %v", id, len(id), err)
		}
		if seen[id] {
			t.Fatal("repeated id")
		}
		seen[id] = true
	}
}

func TestSigner(t *testing.T) {
	k1, k2 := []byte(strings.Repeat("1", 32)), []byte(strings.Repeat("2", 32))
	s := newSigner("session", [][]byte{k1, k2})
	id := newID()
	tok := s.sign(id)
	if len(tok) != tokenLen || tok[:idLen] != id || tok[idLen] != '.' {
		t.Fatalf("token %q", tok)
	}
	for name, tc := range map[string]struct {
		s      *signer
		tok    string
		ok     bool
		keyIdx int
	}{
		"newest key":           {s, tok, true, 0},
		"older key":            {s, newSigner("session", [][]byte{k2}).sign(id), true, 1},
		"unknown key":          {newSigner("session", [][]byte{k2}), tok, false, 0},
		"other cookie name":    {newSigner("other", [][]byte{k1}), tok, false, 0},
		"empty":                {s, "", false, 0},
		"no dot":               {s, strings.Replace(tok, ".", "_", 1), false, 0},
		"one byte short":       {s, tok[:tokenLen-1], false, 0},
		"one byte long":        {s, tok + "A", false, 0},
		"non-base64 id":        {s, "=" + tok[1:], false, 0},
		"signature of another": {s, id + s.sign(newID())[idLen:], false, 0},
	} {
		t.Run(name, func(t *testing.T) {
			gotID, key, ok := tc.s.verify([]byte(tc.tok))
			if ok != tc.ok || ok && (string(gotID) != id || key != tc.keyIdx) {
				t.Errorf("verify = %q, %d, %v; want ok %v key %d", gotID, key, ok, tc.ok, tc.keyIdx)
			}
		})
	}
}

func TestSignerCache(t *testing.T) {
	s := newSigner("session", [][]byte{testKey})
	tok := s.sign(newID())
	for range 2 { // the second time from the cache
		if id, _, ok := s.verify([]byte(tok)); !ok || string(id) != tok[:idLen] {
			t.Fatalf("verify = %q, %v", id, ok)
		}
	}
	// With no keys left, only the cache can verify it.
	pools := s.pools
	s.pools = nil
	if _, _, ok := s.verify([]byte(tok)); !ok {
		t.Error("a token verified before was not found in the cache")
	}
	s.pools = pools
	bad := tok[:tokenLen-1] + flip(tok[tokenLen-1:])
	if _, _, ok := s.verify([]byte(bad)); ok {
		t.Error("a token one character off a cached one verified")
	}
	other := newSigner("session", [][]byte{[]byte(strings.Repeat("k", 32))})
	if _, _, ok := other.verify([]byte(tok)); ok {
		t.Error("the cache leaked between signers")
	}
}

func FuzzVerify(f *testing.F) {
	s := newSigner("session", [][]byte{testKey})
	f.Add(s.sign(newID()))
	f.Add("")
	f.Add(strings.Repeat("A", tokenLen))
	f.Add(strings.Repeat("A", idLen) + "." + strings.Repeat("B", sigLen))
	f.Fuzz(func(t *testing.T, tok string) {
		id, _, ok := s.verify([]byte(tok))
		if ok && s.sign(string(id)) != tok {
			t.Fatalf("verified %q, which is not the signature of %q", tok, id)
		}
	})
}
