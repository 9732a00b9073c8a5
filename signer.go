package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"hash"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unsafe"
)

const (
	idBytes  = 32                 // random bytes in an id
	idLen    = 43                 // base64url length of an id
	sigLen   = 43                 // base64url length of an HMAC-SHA256
	tokenLen = idLen + 1 + sigLen // id "." sig
	minKey   = 32                 // shortest accepted secret
)

var enc = base64.RawURLEncoding

// newID returns 32 bytes from crypto/rand, base64url-encoded without padding.
func newID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return enc.EncodeToString(b[:])
}

// signer signs and verifies "id.sig" tokens: sig is HMAC-SHA256 over
// name "|" id. The first key signs, every key verifies.
type signer struct {
	prefix []byte      // name "|"
	pools  []sync.Pool // one pool of *mac per key
	seed   maphash.Seed
	seen   [seenSlots]atomic.Pointer[seenToken]
}

// seenSlots is the size of the cache of tokens that verified recently, which
// lets a browser's repeat requests skip the HMAC. A slot is chosen by a keyed
// hash of the token and holds only a token that verified; tokens are compared
// in constant time, and a lost race or an evicted slot costs one more HMAC.
const seenSlots = 1024

type seenToken struct {
	tok [tokenLen]byte
	id  string // tok's id, sharing its memory: what verify returns
	key int
}

type mac struct {
	h   hash.Hash
	sum [sha256.Size]byte
	out [sigLen]byte
}

func newSigner(name string, keys [][]byte) *signer {
	s := &signer{prefix: []byte(name + "|"), pools: make([]sync.Pool, len(keys)), seed: maphash.MakeSeed()}
	for i, k := range keys {
		k := append([]byte(nil), k...)
		s.pools[i].New = func() any { return &mac{h: hmac.New(sha256.New, k)} }
	}
	return s
}

// sig writes the base64url signature of id into m.out, with the key of
// m's pool, and returns it.
func (s *signer) sig(m *mac, id []byte) []byte {
	m.h.Reset()
	m.h.Write(s.prefix)
	m.h.Write(id)
	enc.Encode(m.out[:], m.h.Sum(m.sum[:0]))
	return m.out[:]
}

// sign returns the token for id, signed with the newest key.
func (s *signer) sign(id string) string {
	m := s.pools[0].Get().(*mac)
	defer s.pools[0].Put(m)
	b := make([]byte, 0, tokenLen)
	b = append(b, id...)
	b = append(b, '.')
	b = append(b, s.sig(m, []byte(id))...)
	return string(b)
}

// verify checks a token. It returns the id and the index of the key that
// verified it, or ok false. It never panics on any input and compares
// signatures in constant time. The id shares no memory with token; a token
// that verified recently gets the same id string again, without allocating.
func (s *signer) verify(token []byte) (id string, key int, ok bool) {
	if len(token) != tokenLen || token[idLen] != '.' {
		return "", 0, false
	}
	raw, given := token[:idLen], token[idLen+1:]
	slot := &s.seen[maphash.Bytes(s.seed, token)%seenSlots]
	if e := slot.Load(); e != nil && subtle.ConstantTimeCompare(e.tok[:], token) == 1 {
		return e.id, e.key, true
	}
	for _, c := range raw {
		if !isB64(c) {
			return "", 0, false
		}
	}
	for i := range s.pools {
		m := s.pools[i].Get().(*mac)
		good := hmac.Equal(s.sig(m, raw), given)
		s.pools[i].Put(m)
		if good {
			e := &seenToken{key: i}
			copy(e.tok[:], token)
			e.id = unsafe.String(&e.tok[0], idLen) // tok never changes
			slot.Store(e)
			return e.id, i, true
		}
	}
	return "", 0, false
}

func isB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
