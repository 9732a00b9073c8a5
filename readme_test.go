package session_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadmeExample builds the README's example program as written (only the
// listening address changes) against this module, and runs it: without
// SESSION_SECRET it stops with a message, not a panic; with one it signs in
// with a flash and signs out with a flash that reaches the page.
func TestReadmeExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(readme), "## Example\n")
	_, code, _ := strings.Cut(after, "```go\n")
	code, _, ok := strings.Cut(code, "```")
	if !ok || !strings.Contains(code, `app.Listen(":3000")`) {
		t.Fatal("README: no Go example listening on :3000 under ## Example")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code = strings.Replace(code, `":3000"`, `"`+addr+`"`, 1)

	root, _ := os.Getwd()
	dir := t.TempDir()
	sum, _ := os.ReadFile("go.sum")
	gomod := "module readme\n\ngo 1.23\n\nrequire github.com/fibersession/session v0.0.0\n\nreplace github.com/fibersession/session => " + root + "\n"
	for name, data := range map[string][]byte{"main.go": []byte(code), "go.mod": []byte(gomod), "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "readme")
	build := exec.Command("go", "build", "-mod=mod", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the README example does not build: %v\n%s", err, out)
	}

	// No secret: a clear message and a non-zero exit, no panic.
	var stderr bytes.Buffer
	run := exec.Command(bin)
	run.Env = append(os.Environ(), "SESSION_SECRET=")
	run.Stderr = &stderr
	err = run.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(stderr.String(), "SESSION_SECRET") || strings.Contains(stderr.String(), "panic") {
		t.Errorf("without SESSION_SECRET: %v, stderr %q", err, stderr.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, bin)
	srv.Env = append(os.Environ(), "SESSION_SECRET=an example secret of at least 32 bytes")
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	defer cancel()
	waitListening(t, addr)

	// A browser on http://127.0.0.1 (a Secure cookie is kept by hand here;
	// browsers keep them from http://localhost).
	cookie := ""
	do := func(method, path string) string {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		for _, c := range resp.Cookies() {
			cookie = c.Name + "=" + c.Value
			if c.MaxAge < 0 {
				cookie = ""
			}
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for _, step := range []struct{ method, path, want string }{
		{"GET", "/", "Please sign in"},
		{"POST", "/login", ""},
		{"GET", "/", "Welcome back\nHello, ada"},
		{"GET", "/", "Hello, ada"},
		{"POST", "/logout", ""},
		{"GET", "/", "Signed out\nPlease sign in"},
		{"GET", "/", "Please sign in"},
	} {
		if got := do(step.method, step.path); step.want != "" && got != step.want {
			t.Errorf("%s %s: got %q, want %q", step.method, step.path, got, step.want)
		}
	}
}

// waitListening returns once addr accepts connections: the child process
// has started its server.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example did not start listening on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
