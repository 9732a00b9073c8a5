package memory

// idLen is the length of the ids the middleware makes: 32 random bytes in
// base64url without padding.
const (
	idLen  = 43
	keyLen = 32
)

// key is an id of the middleware's form, decoded: the 32 bytes sit in the map
// slot itself, with no string header and no separate allocation.
type key [keyLen]byte

// b64 maps a base64url character to its 6-bit value, and every other byte to
// 0xff.
var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodeID decodes id into k when it is the canonical base64url (no
// padding) encoding of 32 bytes, and reports whether it is. Canonical means
// that the last character's two unused bits are zero, so that no two
// accepted ids decode to the same key; every other id is kept as a string.
func decodeID(k *key, id string) bool {
	if len(id) != idLen {
		return false
	}
	var bad byte
	for i := range 10 { // 40 characters: 30 bytes
		a, b, c, d := b64[id[4*i]], b64[id[4*i+1]], b64[id[4*i+2]], b64[id[4*i+3]]
		bad |= a | b | c | d
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		k[3*i], k[3*i+1], k[3*i+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	a, b, c := b64[id[40]], b64[id[41]], b64[id[42]] // 18 bits: 2 bytes and 2 zero bits
	bad |= a | b | c
	v := uint32(a)<<12 | uint32(b)<<6 | uint32(c)
	k[30], k[31] = byte(v>>10), byte(v>>2)
	return bad&0xc0 == 0 && c&3 == 0
}
