package memory

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

// strict is the standard library's reading of the ids decodeID packs.
var strict = base64.RawURLEncoding.Strict()

// wantDecode checks decodeID(id) against the standard library: an id is
// packed exactly when it is 43 characters that strictly decode to 32 bytes,
// and then to those bytes.
func wantDecode(t *testing.T, id string) {
	t.Helper()
	var k key
	ok := decodeID(&k, id)
	b, err := strict.DecodeString(id)
	want := err == nil && len(id) == idLen && len(b) == keyLen && !strings.ContainsAny(id, "\r\n")
	if ok != want {
		t.Fatalf("decodeID(%q) ok = %v, want %v (strict decoding: %x, %v)", id, ok, want, b, err)
	}
	if ok && !bytes.Equal(k[:], b) {
		t.Fatalf("decodeID(%q) = %x, want %x", id, k, b)
	}
}

func TestDecodeID(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	raw := make([]byte, keyLen)
	for range 100 {
		_, _ = rand.Read(raw)
		id := base64.RawURLEncoding.EncodeToString(raw)
		wantDecode(t, id)
		if k := (key{}); !decodeID(&k, id) || !bytes.Equal(k[:], raw) {
			t.Fatalf("decodeID(%q) = %x; want %x", id, k, raw)
		}
		// Every character, and some that are not base64url, at the start, the
		// middle and the last two places (the last one's two unused bits must
		// be zero).
		for _, pos := range []int{0, 21, 41, 42} {
			for c := range 256 {
				wantDecode(t, id[:pos]+string([]byte{byte(c)})+id[pos+1:])
			}
			for _, c := range alphabet {
				wantDecode(t, id[:pos]+string(c)+id[pos+1:])
			}
		}
		wantDecode(t, id[:42])
		wantDecode(t, id+"A")
		wantDecode(t, id[:42]+"=")
		wantDecode(t, id[:20]+"\n"+id[21:])
		wantDecode(t, base64.URLEncoding.EncodeToString(raw)) // padded: 44 characters
		wantDecode(t, base64.RawStdEncoding.EncodeToString(raw))
	}
	for _, id := range []string{"", "id", "a/b", strings.Repeat("A", 43), strings.Repeat("_", 43), strings.Repeat("A", 42) + "B"} {
		wantDecode(t, id)
	}
}

func FuzzDecodeID(f *testing.F) {
	f.Add("")
	f.Add(strings.Repeat("A", 43))
	f.Add(strings.Repeat("A", 42) + "E")
	f.Add(strings.Repeat("A", 42) + "B")
	f.Add("vZ4b2c0k1Jx-Zr6vU0m3yq2yq1e8m5M_ZcQKx8s3hXw")
	f.Fuzz(func(t *testing.T, id string) { wantDecode(t, id) })
}

func BenchmarkDecodeID(b *testing.B) {
	id := "vZ4b2c0k1Jx-Zr6vU0m3yq2yq1e8m5M_ZcQKx8s3hXw"
	var k key
	for i := 0; i < b.N; i++ {
		if !decodeID(&k, id) {
			b.Fatal(id)
		}
	}
}

func BenchmarkDecodeIDStd(b *testing.B) {
	id := []byte("vZ4b2c0k1Jx-Zr6vU0m3yq2yq1e8m5M_ZcQKx8s3hXw")
	var k [33]byte
	for i := 0; i < b.N; i++ {
		if n, err := strict.Decode(k[:], id); n != keyLen || err != nil {
			b.Fatal(n, err)
		}
	}
}
