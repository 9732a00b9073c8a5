package session

import "testing"

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://example.com", "https://example.com", true},
		{"HTTPS://Example.COM", "https://example.com", true},
		{"https://example.com:443", "https://example.com", true},
		{"http://example.com:80", "http://example.com", true},
		{"http://example.com:", "http://example.com", true},
		{"http://localhost:3000", "http://localhost:3000", true},
		{"https://[::1]:443", "https://[::1]", true},
		{"https://[::1]:8443", "https://[::1]", false},
		{"http://example.com:443", "http://example.com", false},
		{"https://example.com:80", "https://example.com", false},
		{"http://example.com", "https://example.com", false},
		{"https://example.com.evil", "https://example.com", false},
		{"https://sub.example.com", "https://example.com", false},
		{"https://example.com/", "https://example.com", false},
		{"https://user@example.com", "https://example.com", false},
		{"https://example.com?x", "https://example.com", false},
		{"null", "https://example.com", false},
		{"", "https://example.com", false},
		{"https://", "https://", false},
		{"example.com", "example.com", false},
		{"https://example.com", "", false},
	} {
		if got := sameOrigin(tc.a, tc.b); got != tc.same {
			t.Errorf("sameOrigin(%q, %q) = %v", tc.a, tc.b, got)
		}
		if got := sameOrigin(tc.b, tc.a); got != tc.same {
			t.Errorf("sameOrigin(%q, %q) = %v", tc.b, tc.a, got)
		}
	}
}

func TestSafeMethod(t *testing.T) {
	for m, safe := range map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "POST": false, "PUT": false, "PATCH": false, "DELETE": false, "TRACE": false, "CONNECT": false, "get": false, "": false} {
		if safeMethod([]byte(m)) != safe {
			t.Errorf("safeMethod(%q) != %v", m, safe)
		}
	}
}
