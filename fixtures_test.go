package session_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/cookiestore"
)

// TestCookieStoreFixture reads the cookies of a session kept in the
// encrypted cookie store as this release writes them (testdata/records:
// the session cookie, and v2-csrf.rec sealed with the key below until
// 2200): every later release must still open them.
func TestCookieStoreFixture(t *testing.T) {
	read := func(file string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "records", file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	cs, err := cookiestore.New(cookiestore.Config{Keys: [][]byte{[]byte("fixture cookie store key 32 byte")}})
	if err != nil {
		t.Fatal(err)
	}
	e := blankEnv(t, inCookies)
	e.start(session.Config[string, string]{Store: cs, Secrets: [][]byte{[]byte("fixture cookie key, 32 bytes long")}})
	var id, user, notice string
	r := e.send([]string{cookieLine("session="+read("session-cookie.txt"), "session_data="+read("cookiestore-data.txt"))}, func(s *session.Session[string, string]) {
		id, user = s.ID(), getString(s, "user")
		notice, _ = s.GetFlash("notice")
	})
	if r.status != 200 || id != "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" || user != "ada" || notice != "Welcome back" {
		t.Errorf("status %d, session %s: user %q, flash %q", r.status, id, user, notice)
	}
}
