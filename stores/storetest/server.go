package storetest

import (
	"os"
	"testing"
)

// Addr returns the value of the environment variable env, or def when it is
// unset: the address of the server a store's tests talk to.
func Addr(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// Unavailable reports that the server a test needs could not be reached: the
// test is skipped with a message on a developer's machine, and fails when
// SESSION_REQUIRE_SERVERS=1 (as in CI). Call it only with a non-nil err.
func Unavailable(t testing.TB, server string, err error) {
	t.Helper()
	if os.Getenv("SESSION_REQUIRE_SERVERS") == "1" {
		t.Fatalf("%s is required (SESSION_REQUIRE_SERVERS=1) but unavailable: %v", server, err)
	}
	t.Skipf("%s unavailable, skipping (set SESSION_REQUIRE_SERVERS=1 to fail instead): %v", server, err)
}
