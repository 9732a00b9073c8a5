package session_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/cookiestore"
)

// The attack table: hostile requests, each with what must come of it. It is
// a black-box test (package session_test) over a real listener on loopback,
// so that the requests are the bytes an attacker sends, repeated and
// malformed headers included, and so that it can use the encrypted cookie
// store, which imports this package.
//
// Every row starts from two signed-in visitors, "ada" and "bob", in an
// environment of its own: a server-side store (onServer), the same with the
// header transport X-Session (withHeader), or the encrypted cookie store
// (inCookies). The row's setup may act as them (sign out, rotate, change a
// value) and returns the hostile request's header lines. The handler of the
// hostile request reads "user" and, unless the row says otherwise, sets
// "seen" to the row's name: the attacker tries to write into whatever
// session it was given.
//
// What is checked, for every row:
//   - the status, and the session the handler got: a visitor's (or another
//     labelled id's), or a fresh one whose id is new;
//   - the session cookie the response sets: none, a token for a new id, or
//     the adopted id re-signed with the newest key;
//   - what is stored afterwards: on the server, every record that existed
//     before is byte-for-byte unchanged except the adopted one, and a fresh
//     session adds exactly one record; in both stores, what the written
//     session holds is read back through the app by a follow-up request;
//   - no answer quotes the request's header values (the app's Fiber
//     ErrorHandler is statusOnly, as SECURITY.md asks of every app).

// Keys of the attack environments. The cookie signer's keys: attackKey signs,
// attackOldKey still verifies, attackRetiredKey was removed from Secrets.
var (
	attackKey        = []byte("attack table: the newest key, 32 bytes")
	attackOldKey     = []byte("attack table: an older key, 32 bytes.")
	attackRetiredKey = []byte("attack table: a key removed, 32 bytes")
	// The cookie store's AES keys: the first seals, both open.
	sealKey, sealOldKey, sealRetiredKey = []byte("attack seal key, 32 bytes long!!"), []byte("attack seal key 2, 32 bytes long"), []byte("attack seal key 3, 32 bytes long")
)

const attackHeader = "X-Session" // the header transport of withHeader

type envKind int

const (
	onServer envKind = iota
	withHeader
	inCookies
)

// The session cookie a response must set.
type cookieWant int

const (
	cookieNone     cookieWant = iota // no session cookie
	cookieNew                        // a token for the fresh session's new id
	cookieResigned                   // the adopted id, signed with the newest key
)

type attackWant struct {
	status   int        // 0: 200
	session  string     // the label of the session the handler got; "": a fresh one
	user     string     // the "user" the handler read
	cookie   cookieWant // the session cookie the response sets
	readOnly bool       // nothing stored changes: the write is dropped (a grace copy) or fails
	err      error      // the ErrorHandler got an error wrapping this
	// orRefused: fasthttp may refuse the request instead, with 400 before
	// any handler (v1.51 passes control characters in header values,
	// later releases refuse them).
	orRefused bool
}

type attackRow struct {
	name  string
	env   envKind
	setup func(e *attackEnv) []string // the hostile request's header lines
	act   func(s *session.Session[string, string], row string)
	want  attackWant
}

// setSeen is the default action of the hostile request's handler.
func setSeen(s *session.Session[string, string], row string) { s.Set("seen", row) }

func TestAttackTable(t *testing.T) {
	big := strings.Repeat("x", 65<<10) // over the default MaxRecordSize, 64 KiB
	rows := []attackRow{
		// Forged, truncated and re-encoded signatures.
		{name: "forged signature", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.id("ada") + "." + strings.Repeat("Q", 43))}
		}},
		{name: "signature of another session", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.id("ada") + e.tok("bob")[43:])}
		}},
		{name: "one character of the signature changed", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			return []string{cookieLine("session=" + tok[:60] + otherB64(tok[60]) + tok[61:])}
		}},
		{name: "signature re-encoded with other spare bits", setup: func(e *attackEnv) []string {
			// The last of 43 characters carries 4 bits and 2 spare ones: a
			// lenient decoder reads the same 32 bytes.
			tok := e.tok("ada")
			return []string{cookieLine("session=" + tok[:44] + sameBytes(e.t, tok[44:86]+spareBits(tok[86]), tok[44:]))}
		}},
		{name: "id re-encoded with other spare bits", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			return []string{cookieLine("session=" + sameBytes(e.t, tok[:42]+spareBits(tok[42]), tok[:43]) + tok[43:])}
		}},
		{name: "standard base64 alphabet", setup: func(e *attackEnv) []string {
			tok := strings.NewReplacer("-", "+", "_", "/").Replace(e.tok("ada"))
			if tok == e.tok("ada") {
				e.t.Fatal("the token has no character that differs between the alphabets")
			}
			return []string{cookieLine("session=" + tok)}
		}},
		{name: "standard base64 with padding", setup: func(e *attackEnv) []string {
			id, sig := reencode(e.t, e.tok("ada"))
			return []string{cookieLine("session=" + id + "." + sig)}
		}},
		{name: "padding appended", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.tok("ada") + "=")}
		}},
		{name: "letter case of the signature changed", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			return []string{cookieLine("session=" + tok[:44] + swapCase(tok[44:]))}
		}},
		{name: "letter case of the id changed", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			return []string{cookieLine("session=" + swapCase(tok[:43]) + tok[43:])}
		}},
		{name: "truncated by one character", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.tok("ada")[:86])}
		}},
		{name: "id without its signature", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.id("ada"))}
		}},
		{name: "signature without its id", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.tok("ada")[43:])}
		}},
		{name: "client-chosen id (fixation)", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + strings.Repeat("A", 43) + "." + strings.Repeat("A", 43))}
		}},
		{name: "percent-encoded token", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + strings.ReplaceAll(e.tok("ada"), ".", "%2E"))}
		}},

		// Keys.
		{name: "signed with an older key still in Secrets", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + hmacToken(attackOldKey, "session", e.id("ada")))}
		}, want: attackWant{session: "ada", user: "ada", cookie: cookieResigned}},
		{name: "signed with a key removed from Secrets", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + hmacToken(attackRetiredKey, "session", e.id("ada")))}
		}},
		{name: "signed for another cookie name", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + hmacToken(attackKey, "other", e.id("ada")))}
		}},
		{name: "the CSRF cookie's value as the session cookie", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.csrfCookie())}
		}},

		// Replay.
		{name: "replayed after sign-out", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			e.as("ada", func(s *session.Session[string, string]) { s.Destroy() })
			return []string{cookieLine("session=" + tok)}
		}},
		{name: "replayed after RegenerateID(true)", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			e.as("ada", func(s *session.Session[string, string]) { s.RegenerateID(true) })
			return []string{cookieLine("session=" + tok)}
		}},
		{name: "replayed within RotationGrace after RegenerateID(false)", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			e.labels[e.id("ada")] = "ada's old id"
			e.as("ada", func(s *session.Session[string, string]) { s.RegenerateID(false) })
			return []string{cookieLine("session=" + tok)}
		}, want: attackWant{session: "ada's old id", user: "ada", readOnly: true}},
		{name: "a rotation asked for through the grace copy", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			e.labels[e.id("ada")] = "ada's old id"
			e.as("ada", func(s *session.Session[string, string]) { s.RegenerateID(false) })
			return []string{cookieLine("session=" + tok)}
		}, act: func(s *session.Session[string, string], row string) {
			s.RegenerateID(false) // would give the old cookie a new id and a new lifetime
			s.Set("seen", row)
		}, want: attackWant{session: "ada's old id", user: "ada", readOnly: true}},
		{name: "replayed past RotationGrace after RegenerateID(false)", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			e.as("ada", func(s *session.Session[string, string]) { s.RegenerateID(false) })
			e.st.advance(time.Minute + time.Second) // the default grace is one minute
			return []string{cookieLine("session=" + tok)}
		}},

		// Duplicated cookies.
		{name: "the same cookie twice", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session="+e.tok("ada"), "session="+e.tok("ada"))}
		}, want: attackWant{session: "ada", user: "ada"}},
		{name: "two cookies naming different sessions", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session="+e.tok("ada"), "session="+e.tok("bob"))}
		}},
		{name: "two Cookie headers naming different sessions", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.tok("ada")), cookieLine("session=" + e.tok("bob"))}
		}},
		{name: "a forged cookie before a valid one", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session="+e.id("bob")+e.tok("ada")[43:], "session="+e.tok("ada"))}
		}, want: attackWant{session: "ada", user: "ada"}},
		{name: "the cookie name in another letter case", setup: func(e *attackEnv) []string {
			return []string{cookieLine("Session=" + e.tok("ada"))}
		}},

		// Oversized cookies and headers.
		{name: "oversized cookie value", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.tok("ada") + strings.Repeat("A", 8<<10))}
		}},
		{name: "two hundred forged cookies", setup: func(e *attackEnv) []string {
			var cs []string
			for range 200 {
				cs = append(cs, "session="+e.id("bob")+e.tok("ada")[43:])
			}
			return []string{cookieLine(cs...)}
		}},
		{name: "headers larger than the read buffer", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.tok("ada")), cookieLine("pad=" + strings.Repeat("A", 40<<10))}
		}, want: attackWant{status: http.StatusRequestHeaderFieldsTooLarge, readOnly: true}},

		// Control characters, NUL and bytes that are not UTF-8.
		{name: "NUL inside the token", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			return []string{cookieLine("session=" + tok[:50] + "\x00" + tok[51:])}
		}, want: attackWant{orRefused: true}},
		{name: "NUL after the token", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.tok("ada") + "\x00")}
		}, want: attackWant{orRefused: true}},
		{name: "non-UTF-8 bytes in the id", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			return []string{cookieLine("session=" + tok[:10] + "\xff\xfe" + tok[12:])}
		}},
		{name: "control characters in the signature", setup: func(e *attackEnv) []string {
			tok := e.tok("ada")
			return []string{cookieLine("session=" + tok[:60] + "\x01\x7f" + tok[62:])}
		}, want: attackWant{orRefused: true}},

		// The header transport.
		{name: "empty header value next to a valid cookie", env: withHeader, setup: func(e *attackEnv) []string {
			return []string{attackHeader + ":", cookieLine("session=" + e.tok("ada"))}
		}, want: attackWant{session: "ada", user: "ada"}},
		{name: "header naming one session, cookie another", env: withHeader, setup: func(e *attackEnv) []string {
			return []string{attackHeader + ": " + e.tok("bob"), cookieLine("session=" + e.tok("ada"))}
		}, want: attackWant{session: "bob", user: "bob"}},
		{name: "two header values naming different sessions", env: withHeader, setup: func(e *attackEnv) []string {
			return []string{attackHeader + ": " + e.tok("ada"), attackHeader + ": " + e.tok("bob")}
		}},
		{name: "two header values, different sessions, with a valid cookie", env: withHeader, setup: func(e *attackEnv) []string {
			return []string{attackHeader + ": " + e.tok("bob"), "x-session: " + e.tok("ada"), cookieLine("session=" + e.tok("ada"))}
		}},
		{name: "two header values naming the same session", env: withHeader, setup: func(e *attackEnv) []string {
			return []string{attackHeader + ": " + e.tok("ada"), attackHeader + ": " + e.tok("ada")}
		}, want: attackWant{session: "ada", user: "ada"}},
		{name: "forged header value next to a valid cookie", env: withHeader, setup: func(e *attackEnv) []string {
			return []string{attackHeader + ": " + e.id("ada") + e.tok("bob")[43:], cookieLine("session=" + e.tok("ada"))}
		}},
		{name: "two tokens in one comma-joined header value", env: withHeader, setup: func(e *attackEnv) []string {
			return []string{attackHeader + ": " + e.tok("ada") + ", " + e.tok("bob")}
		}},
		{name: "a forged header value and a valid one", env: withHeader, setup: func(e *attackEnv) []string {
			return []string{attackHeader + ": " + e.id("bob") + e.tok("ada")[43:], attackHeader + ": " + e.tok("ada")}
		}, want: attackWant{session: "ada", user: "ada"}},

		// Oversized values and flash messages.
		{name: "oversized value in a signed-in session", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.tok("ada"))}
		}, act: func(s *session.Session[string, string], _ string) { s.Set("big", big) },
			want: attackWant{status: 500, session: "ada", user: "ada", readOnly: true, err: session.ErrTooLarge}},
		{name: "oversized flash in a fresh session", setup: func(e *attackEnv) []string { return nil },
			act:  func(s *session.Session[string, string], _ string) { s.Flash("big", big) },
			want: attackWant{status: 500, readOnly: true, err: session.ErrTooLarge}},
		{name: "values adding up past the limit", setup: func(e *attackEnv) []string {
			return []string{cookieLine("session=" + e.tok("bob"))}
		}, act: func(s *session.Session[string, string], _ string) {
			for i := range 70 {
				s.Set(fmt.Sprint("k", i), big[:1<<10])
			}
		}, want: attackWant{status: 500, session: "bob", user: "bob", readOnly: true, err: session.ErrTooLarge}},

		// The encrypted cookie store.
		{name: "cookie store: the data cookies of two users swapped", env: inCookies, setup: func(e *attackEnv) []string {
			return []string{cookieLine("session="+e.tok("ada"), "session_data="+e.data("bob"))}
		}},
		{name: "cookie store: one bit of the data cookie flipped", env: inCookies, setup: func(e *attackEnv) []string {
			raw, err := base64.RawURLEncoding.DecodeString(e.data("ada"))
			if err != nil {
				e.t.Fatal(err)
			}
			raw[len(raw)/2] ^= 1
			return []string{cookieLine("session="+e.tok("ada"), "session_data="+base64.RawURLEncoding.EncodeToString(raw))}
		}},
		{name: "cookie store: the data cookie truncated", env: inCookies, setup: func(e *attackEnv) []string {
			d := e.data("ada")
			return []string{cookieLine("session="+e.tok("ada"), "session_data="+d[:len(d)-4])}
		}},
		{name: "cookie store: the data cookie in standard base64", env: inCookies, setup: func(e *attackEnv) []string {
			raw, err := base64.RawURLEncoding.DecodeString(e.data("ada"))
			if err != nil {
				e.t.Fatal(err)
			}
			return []string{cookieLine("session="+e.tok("ada"), "session_data="+base64.StdEncoding.EncodeToString(raw))}
		}},
		{name: "cookie store: sealed with a key removed from the store", env: inCookies, setup: func(e *attackEnv) []string {
			return e.elsewhere(sealRetiredKey)
		}},
		{name: "cookie store: sealed with an older key still in the store", env: inCookies, setup: func(e *attackEnv) []string {
			return e.elsewhere(sealOldKey)
		}, want: attackWant{session: "eve", user: "eve"}},
		{name: "cookie store: the data cookie without the id cookie", env: inCookies, setup: func(e *attackEnv) []string {
			return []string{cookieLine("session_data=" + e.data("ada"))}
		}},
		{name: "cookie store: an old data cookie replayed after a change", env: inCookies, setup: func(e *attackEnv) []string {
			c := cookieLine("session="+e.tok("ada"), "session_data="+e.data("ada"))
			e.as("ada", func(s *session.Session[string, string]) { s.Set("user", "ada, renamed") })
			return []string{c}
		}, want: attackWant{session: "ada", user: "ada"}}, // what the store cannot revoke (SECURITY.md)
		{name: "cookie store: replayed after sign-out", env: inCookies, setup: func(e *attackEnv) []string {
			c := cookieLine("session="+e.tok("ada"), "session_data="+e.data("ada"))
			e.as("ada", func(s *session.Session[string, string]) { s.Destroy() })
			return []string{c}
		}, want: attackWant{session: "ada", user: "ada"}}, // what the store cannot revoke (SECURITY.md)
		{name: "cookie store: NUL in the data cookie", env: inCookies, setup: func(e *attackEnv) []string {
			d := e.data("ada")
			return []string{cookieLine("session="+e.tok("ada"), "session_data="+d[:30]+"\x00"+d[31:])}
		}, want: attackWant{orRefused: true}},
	}
	names := map[string]bool{}
	for _, row := range rows {
		if names[row.name] {
			t.Fatalf("two rows named %q", row.name)
		}
		names[row.name] = true
		t.Run(row.name, func(t *testing.T) { runAttack(t, row) })
	}
	if len(rows) < 30 {
		t.Errorf("%d rows; the table promises at least 30", len(rows))
	}
}

// runAttack sets up the row's environment, sends its hostile request and
// checks the outcome.
func runAttack(t *testing.T, row attackRow) {
	e := newAttackEnv(t, row.env)
	// ada's token has a character that differs between the base64
	// alphabets ('-' or '_'); three in four do.
	for i := 0; i == 0 || !strings.ContainsAny(e.tok("ada"), "-_"); i++ {
		if i == 50 {
			t.Fatal("no token with '-' or '_' in 50 sign-ins")
		}
		e.login("ada")
	}
	e.login("bob")
	lines := row.setup(e)
	before := e.st.snapshot()
	act := row.act
	if act == nil {
		act = setSeen
	}
	var gotID, gotUser string
	handled := false
	r := e.send(lines, func(s *session.Session[string, string]) {
		handled = true
		gotID, gotUser = s.ID(), getString(s, "user")
		act(s, row.name)
	})
	want := row.want
	if want.status == 0 {
		want.status = http.StatusOK
	}
	if want.session == "" && want.cookie == cookieNone && want.status == http.StatusOK && !want.readOnly {
		want.cookie = cookieNew // a fresh session written by the handler
	}

	// No response echoes what the request carried (SECURITY.md).
	for _, l := range lines {
		if _, v, _ := strings.Cut(l, ":"); len(strings.TrimSpace(v)) >= 20 && strings.Contains(r.body, strings.TrimSpace(v)[:20]) {
			t.Errorf("the response echoes the request's header %q: %q", l[:24], r.body)
		}
	}
	if want.orRefused && r.status == http.StatusBadRequest {
		want = attackWant{status: http.StatusBadRequest, readOnly: true}
	}

	// The status, and the session the handler got.
	if r.status != want.status {
		t.Fatalf("status %d, want %d (body %q)", r.status, want.status, r.body)
	}
	if err := e.lastErr(); (want.err == nil) != (err == nil) || want.err != nil && !errors.Is(err, want.err) {
		t.Errorf("the ErrorHandler got %v, want %v", err, want.err)
	}
	if !handled {
		if want.session != "" || want.user != "" {
			t.Fatal("the handler did not run")
		}
	} else {
		label, known := e.labels[gotID]
		switch {
		case want.session == "" && known:
			t.Errorf("the handler got %s's session (id %s), want a fresh one", label, gotID)
		case want.session == "" && (before[gotID] != nil || len(gotID) != 43):
			t.Errorf("the fresh session's id %q is not new", gotID)
		case want.session != "" && label != want.session:
			t.Errorf("the handler got session %q (%s), want %s's", gotID, label, want.session)
		}
		if gotUser != want.user {
			t.Errorf("the handler read user %q, want %q", gotUser, want.user)
		}
	}

	// The session cookie the response sets.
	set, isSet := r.cookies["session"]
	switch want.cookie {
	case cookieNone:
		if isSet {
			t.Errorf("a session cookie was set: %q", set)
		}
	case cookieNew, cookieResigned:
		if w := hmacToken(attackKey, "session", gotID); set != w {
			t.Errorf("session cookie %q, want %q (the id the handler got, signed with the newest key)", set, w)
		}
	}
	if row.env == withHeader && r.header != set {
		t.Errorf("header transport %q, cookie %q: they differ", r.header, set)
	}

	// What is stored afterwards.
	after := e.st.snapshot()
	if e.st != nil {
		changed := ""
		for id, data := range after {
			old, existed := before[id]
			switch {
			case existed && bytes.Equal(old, data):
			case want.readOnly:
				t.Errorf("record %s (%s) written, want nothing stored changed", id, e.labels[id])
			case id != gotID:
				t.Errorf("record %s (%s) written, but the handler's session is %s", id, e.labels[id], gotID)
			default:
				changed = id
			}
		}
		for id := range before {
			if _, ok := after[id]; !ok {
				t.Errorf("record %s (%s) deleted", id, e.labels[id])
			}
		}
		if !want.readOnly && want.status == http.StatusOK && changed == "" {
			t.Errorf("the handler's write to %s was not stored", gotID)
		}
	}
	if !want.readOnly && want.status == http.StatusOK {
		// Read back what was written, through the app.
		c := "session=" + hmacToken(attackKey, "session", gotID)
		if row.env == inCookies {
			c += "; session_data=" + r.cookies["session_data"]
		}
		var user, seen string
		e.send([]string{cookieLine(c)}, func(s *session.Session[string, string]) { user, seen = getString(s, "user"), getString(s, "seen") })
		if user != want.user || seen != row.name {
			t.Errorf("the written session holds user %q and seen %q; want %q and %q", user, seen, want.user, row.name)
		}
	}
}

func getString(s *session.Session[string, string], key string) string { v, _ := s.Get(key); return v }

// attackEnv is an app with the session middleware on a loopback listener.
type attackEnv struct {
	t      *testing.T
	kind   envKind
	m      *session.Manager[string, string]
	app    *fiber.App
	addr   string
	st     *clockStore // nil with the cookie store
	csrf   *session.CSRF
	labels map[string]string            // session id -> whose
	users  map[string]map[string]string // visitor -> cookie name -> value

	mu   sync.Mutex
	fns  map[string]func(*session.Session[string, string])
	seq  int
	errs []error // what the ErrorHandler got
}

func newAttackEnv(t *testing.T, kind envKind) *attackEnv {
	t.Helper()
	e := blankEnv(t, kind)
	cfg := session.Config[string, string]{
		Secrets: [][]byte{attackKey, attackOldKey},
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			e.mu.Lock()
			e.errs = append(e.errs, err)
			e.mu.Unlock()
			return c.Status(http.StatusInternalServerError).SendString("Internal Server Error")
		},
	}
	switch kind {
	case inCookies:
		cs, err := cookiestore.New(cookiestore.Config{Keys: [][]byte{sealKey, sealOldKey}})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Store = cs
	default:
		e.st = &clockStore{items: map[string]clockItem{}}
		cfg.Store = e.st
		if kind == withHeader {
			cfg.Header = attackHeader
		}
	}
	e.start(cfg)
	return e
}

// blankEnv returns an environment that is not serving yet (see start).
func blankEnv(t *testing.T, kind envKind) *attackEnv {
	return &attackEnv{t: t, kind: kind, labels: map[string]string{}, users: map[string]map[string]string{}, fns: map[string]func(*session.Session[string, string]){}}
}

// start serves the app of cfg on a loopback listener until the test ends.
func (e *attackEnv) start(cfg session.Config[string, string]) {
	e.t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e.m, e.app, e.csrf = serveAttack(e.t, cfg, e.handle)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.app.Listener(ln)
	}()
	e.t.Cleanup(func() {
		_ = e.app.Shutdown()
		<-done
	})
}

// serveAttack returns an app with the session middleware for cfg, whose
// route /run/:n runs handle, and /csrf gives a CSRF token.
func serveAttack(t *testing.T, cfg session.Config[string, string], handle func(c *fiber.Ctx, s *session.Session[string, string]) error) (*session.Manager[string, string], *fiber.App, *session.CSRF) {
	t.Helper()
	m, err := session.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := session.NewCSRF(m, session.CSRFConfig{})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{ReadBufferSize: 32 << 10, DisableStartupMessage: true, ErrorHandler: statusOnly})
	app.Use(m.Handler())
	app.All("/run/:n", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		return handle(c, s)
	})
	app.Get("/csrf", p.Handler(), func(c *fiber.Ctx) error {
		tok, err := session.CSRFToken(c)
		if err != nil {
			return err
		}
		return c.SendString(tok)
	})
	return m, app, p
}

// statusOnly answers an error with its status and the status's text, never
// with the error's message: Fiber's default echoes it, and for a request
// fasthttp cannot parse that message quotes the request's headers, cookies
// included (SECURITY.md).
func statusOnly(c *fiber.Ctx, err error) error {
	code := http.StatusInternalServerError
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code = fe.Code
	}
	return c.Status(code).SendString(http.StatusText(code))
}

func (e *attackEnv) handle(c *fiber.Ctx, s *session.Session[string, string]) error {
	e.mu.Lock()
	fn := e.fns[c.Params("n")]
	e.mu.Unlock()
	if fn == nil {
		return c.SendStatus(http.StatusNotFound)
	}
	fn(s)
	return c.SendString("ok")
}

func (e *attackEnv) lastErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.errs) == 0 {
		return nil
	}
	return e.errs[len(e.errs)-1]
}

// rawReply is what a raw request got.
type rawReply struct {
	status  int
	body    string
	cookies map[string]string // the values of the cookies the response sets
	header  string            // the header transport's value
}

// send sends POST /run/<n> with the header lines, exactly as given, and
// runs fn as its handler.
func (e *attackEnv) send(lines []string, fn func(*session.Session[string, string])) rawReply {
	e.t.Helper()
	e.mu.Lock()
	e.seq++
	n := fmt.Sprint(e.seq)
	e.fns[n] = fn
	e.mu.Unlock()
	return e.raw("POST /run/"+n, lines)
}

// raw sends the request line with the header lines over a new connection.
func (e *attackEnv) raw(line string, lines []string) rawReply {
	e.t.Helper()
	var b strings.Builder
	b.WriteString(line + " HTTP/1.1\r\nHost: example.com\r\n")
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\nConnection: close\r\n\r\n")
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, b.String()); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := rawReply{status: resp.StatusCode, body: string(body), cookies: map[string]string{}, header: resp.Header.Get(attackHeader)}
	for _, c := range resp.Cookies() {
		r.cookies[c.Name] = c.Value
	}
	return r
}

// login signs name in: a new session holding user=name.
func (e *attackEnv) login(name string) {
	e.t.Helper()
	e.users[name] = map[string]string{}
	e.as(name, func(s *session.Session[string, string]) { s.Set("user", name) })
	if e.tok(name) == "" {
		e.t.Fatalf("no session cookie for %s", name)
	}
}

// as sends a request with the visitor's cookies, running fn, and keeps the
// cookies the response sets.
func (e *attackEnv) as(name string, fn func(*session.Session[string, string])) {
	e.t.Helper()
	jar := e.users[name]
	var pairs []string
	for k, v := range jar {
		pairs = append(pairs, k+"="+v)
	}
	var lines []string
	if len(pairs) > 0 {
		lines = append(lines, cookieLine(pairs...))
	}
	r := e.send(lines, fn)
	if r.status != http.StatusOK {
		e.t.Fatalf("%s's request: %d %s", name, r.status, r.body)
	}
	for k, v := range r.cookies {
		if v == "" {
			delete(jar, k)
		} else {
			jar[k] = v
		}
	}
	if tok := jar["session"]; len(tok) > 43 {
		if _, ok := e.labels[tok[:43]]; !ok {
			e.labels[tok[:43]] = name
		}
	}
}

// tok returns the visitor's session cookie value, id "." signature.
func (e *attackEnv) tok(name string) string { return e.users[name]["session"] }

// id returns the id of the visitor's session.
func (e *attackEnv) id(name string) string { return e.tok(name)[:43] }

// data returns the visitor's data cookie of the cookie store.
func (e *attackEnv) data(name string) string {
	d := e.users[name]["session_data"]
	if d == "" {
		e.t.Fatalf("%s has no data cookie", name)
	}
	return d
}

// csrfCookie returns the value of a CSRF cookie the app gave a visitor.
func (e *attackEnv) csrfCookie() string {
	e.t.Helper()
	r := e.raw("GET /csrf", nil)
	if v := r.cookies["__Host-csrf"]; v != "" {
		return v
	}
	e.t.Fatalf("no CSRF cookie: %d %v", r.status, r.cookies)
	return ""
}

// elsewhere signs "eve" in on another instance of the app whose cookie
// store seals with key (and has the same Secrets), labels her session, and
// returns the header lines of her cookies.
func (e *attackEnv) elsewhere(key []byte) []string {
	e.t.Helper()
	cs, err := cookiestore.New(cookiestore.Config{Keys: [][]byte{key}})
	if err != nil {
		e.t.Fatal(err)
	}
	o := blankEnv(e.t, inCookies)
	o.start(session.Config[string, string]{Secrets: [][]byte{attackKey}, Store: cs})
	o.login("eve")
	e.labels[o.id("eve")] = "eve"
	return []string{cookieLine("session="+o.tok("eve"), "session_data="+o.data("eve"))}
}

// cookieLine returns a Cookie header line of the pairs.
func cookieLine(pairs ...string) string { return "Cookie: " + strings.Join(pairs, "; ") }

// hmacToken returns the cookie value for id as the README specifies it:
// id "." base64url(HMAC-SHA256(key, name "|" id)).
func hmacToken(key []byte, name, id string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(name + "|" + id))
	return id + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// otherB64 returns a base64url character other than c.
func otherB64(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// spareBits returns the base64url character that differs from c, the last
// of an unpadded encoding of 32 bytes, only in its two spare low bits.
func spareBits(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i^1])
}

// sameBytes returns variant, an encoding of 32 bytes other than canonical,
// after checking that a lenient base64url decoder reads both as the same
// bytes.
func sameBytes(t *testing.T, variant, canonical string) string {
	t.Helper()
	a, errA := base64.RawURLEncoding.DecodeString(variant)
	b, errB := base64.RawURLEncoding.DecodeString(canonical)
	if errA != nil || errB != nil || !bytes.Equal(a, b) || variant == canonical {
		t.Fatalf("%q and %q: not two encodings of the same bytes (%v, %v)", variant, canonical, errA, errB)
	}
	return variant
}

// reencode returns the id and signature of tok re-encoded as padded
// standard base64, which decodes to the same bytes.
func reencode(t *testing.T, tok string) (id, sig string) {
	t.Helper()
	a, err := base64.RawURLEncoding.DecodeString(tok[:43])
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.RawURLEncoding.DecodeString(tok[44:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(a), base64.StdEncoding.EncodeToString(b)
}

// swapCase swaps the letter case of every letter of s.
func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

// clockStore is a store with compare-and-set whose records expire by a
// clock the test moves, so a test can step past a TTL (the rotation grace)
// without sleeping. snapshot returns every record, expired or not.
type clockStore struct {
	mu     sync.Mutex
	offset time.Duration
	items  map[string]clockItem
}

type clockItem struct {
	data    []byte
	expires time.Time
}

func (c *clockStore) now() time.Time { return time.Now().Add(c.offset) }

func (c *clockStore) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func (c *clockStore) live(id string) (clockItem, bool) {
	it, ok := c.items[id]
	return it, ok && c.now().Before(it.expires)
}

func (c *clockStore) Get(_ context.Context, id string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if it, ok := c.live(id); ok {
		return it.data, nil
	}
	return nil, session.ErrNotFound
}

func (c *clockStore) GetTTL(_ context.Context, id string) ([]byte, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if it, ok := c.live(id); ok {
		return it.data, it.expires.Sub(c.now()), nil
	}
	return nil, 0, session.ErrNotFound
}

func (c *clockStore) Set(_ context.Context, id string, data []byte, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[id] = clockItem{data: data, expires: c.now().Add(ttl)}
	return nil
}

func (c *clockStore) CompareAndSet(_ context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.live(id)
	if ok != (old != nil) || ok && !bytes.Equal(it.data, old) {
		return false, nil
	}
	c.items[id] = clockItem{data: data, expires: c.now().Add(ttl)}
	return true, nil
}

func (c *clockStore) Touch(_ context.Context, id string, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if it, ok := c.live(id); ok {
		it.expires = c.now().Add(ttl)
		c.items[id] = it
	}
	return nil
}

func (c *clockStore) Delete(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, id)
	return nil
}

func (c *clockStore) snapshot() map[string][]byte {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]byte, len(c.items))
	for id, it := range c.items {
		out[id] = bytes.Clone(it.data)
	}
	return out
}

// TestAttackConfig checks the settings that would weaken every session:
// secrets anyone can guess, and cookie-name prefixes written in another
// letter case, which browsers still treat as __Host- and __Secure- (so the
// cookie they set would be dropped, or a weaker one accepted).
func TestAttackConfig(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		cfg  session.Config[string, string]
		csrf *session.CSRFConfig // nil: the session config is refused
		want string              // in the error
	}{
		{name: "32 zero bytes", cfg: session.Config[string, string]{Secrets: [][]byte{make([]byte, 32)}}, want: "secret 0 is one byte repeated 32 times"},
		{name: "64 times x", cfg: session.Config[string, string]{Secrets: [][]byte{bytes.Repeat([]byte("x"), 64)}}, want: "secret 0 is one byte repeated 64 times"},
		{name: "an older secret of one byte", cfg: session.Config[string, string]{Secrets: [][]byte{attackKey, bytes.Repeat([]byte{0xff}, 40)}}, want: "secret 1"},
		{name: "__host- with a Domain", cfg: session.Config[string, string]{CookieName: "__host-s", CookieDomain: "example.com"}, want: "__Host-"},
		{name: "__HOST- with a Path", cfg: session.Config[string, string]{CookieName: "__HOST-s", CookiePath: "/app"}, want: "__Host-"},
		{name: "__hOsT- not Secure", cfg: session.Config[string, string]{CookieName: "__hOsT-s", CookieInsecure: true}, want: "__Host-"},
		{name: "__secure- not Secure", cfg: session.Config[string, string]{CookieName: "__secure-s", CookieInsecure: true}, want: "__Secure-"},
		{name: "__SECURE- not Secure", cfg: session.Config[string, string]{CookieName: "__SECURE-s", CookieInsecure: true}, want: "__Secure-"},
		{name: "CSRF cookie __host- with a Domain", cfg: session.Config[string, string]{CookieDomain: "example.com"}, csrf: &session.CSRFConfig{CookieName: "__host-csrf"}, want: "__Host-"},
		{name: "CSRF cookie __SECURE- not Secure", cfg: session.Config[string, string]{CookieInsecure: true}, csrf: &session.CSRFConfig{CookieName: "__SECURE-csrf"}, want: "__Secure-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Logger = quiet
			if cfg.Secrets == nil {
				cfg.Secrets = [][]byte{attackKey}
			}
			m, err := session.NewManager(cfg)
			if tc.csrf != nil {
				if err != nil {
					t.Fatal(err)
				}
				_, err = session.NewCSRF(m, *tc.csrf)
			}
			switch {
			case err == nil:
				t.Fatal("accepted")
			case !errors.Is(err, session.ErrConfig) || errors.Is(err, session.ErrShortSecret):
				t.Fatalf("error %v: want an ErrConfig that is not ErrShortSecret", err)
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			for _, k := range cfg.Secrets {
				if strings.Contains(err.Error(), string(k[:8])) {
					t.Errorf("the error %q shows a secret", err)
				}
			}
		})
	}
	// Near the edges: accepted.
	for name, cfg := range map[string]session.Config[string, string]{
		"a secret of two byte values": {Secrets: [][]byte{append(make([]byte, 31), 1)}},
		"__host- as the rules want":   {CookieName: "__host-s"},
		"__Secure- with a Domain":     {CookieName: "__SECURE-s", CookieDomain: "example.com", CookiePath: "/app"},
		"a name that only starts so":  {CookieName: "__Hostname", CookieDomain: "example.com", CookieInsecure: true},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.Logger = quiet
			if cfg.Secrets == nil {
				cfg.Secrets = [][]byte{attackKey}
			}
			m, err := session.NewManager(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := session.NewCSRF(m, session.CSRFConfig{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
