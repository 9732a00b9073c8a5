package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// server is a variant's app listening on loopback, in this process or in a
// child process of its own.
type server struct {
	addr string // "127.0.0.1:port"
	// mark records the server's Go heap (HeapAlloc after GC) as the zero of
	// mem's, which returns the heap above it and, for a child process, its
	// resident set (0 in this process, where that would count the client too).
	mark func() error
	mem  func() (heap, rss uint64, err error)
	// cpu is the CPU time the server's process has used, when that is not
	// this process (0 otherwise: cpuTime counts it).
	cpu  func() time.Duration
	stop func()
}

// heapAfterGC is HeapAlloc after two collections (the second one empties
// the sync.Pools that the first one moved to their victim caches).
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rss is this process's resident set size (VmRSS), 0 where there is no /proc.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	_, after, ok := bytes.Cut(b, []byte("\nVmRSS:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(after, []byte("\n"))
	kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(string(line)), " kB"), 10, 64)
	return kb << 10
}

// settle waits (up to three seconds) until the app has at most n open
// connections, so that the heap is not taken while connections the client
// closed still hold their buffers.
func settle(app *fiber.App, n int32) {
	for deadline := time.Now().Add(3 * time.Second); app.Server().GetOpenConnectionsCount() > n && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// listen serves app on a new loopback listener.
func listen(app *fiber.App) (net.Listener, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// fasthttp's worker pool looks for idle workers, and for the end of the
	// server, every MaxIdleWorkerDuration (10 s by default), and holds the
	// app until then: a stopped variant's sessions would still be in the
	// heap when the next one's is taken. The users keep their connections
	// busy, so that no worker is idle that long during a phase anyway.
	app.Server().MaxIdleWorkerDuration = 200 * time.Millisecond
	go func() { _ = app.Listener(ln) }()
	return ln, nil
}

// startInProcess serves v in this process.
func startInProcess(v variant, redisAddr string) (*server, error) {
	app, release, err := v.build(redisAddr)
	if err != nil {
		return nil, err
	}
	ln, err := listen(app)
	if err != nil {
		release()
		return nil, err
	}
	var before uint64
	return &server{
		addr: ln.Addr().String(),
		mark: func() error {
			settle(app, 0)
			before = heapAfterGC()
			return nil
		},
		mem: func() (uint64, uint64, error) {
			settle(app, 0)
			h := heapAfterGC()
			return h - min(before, h), 0, nil
		},
		cpu: func() time.Duration { return 0 },
		stop: func() {
			_ = app.ShutdownWithTimeout(5 * time.Second)
			release()
		},
	}, nil
}

// The child process: `load -serve VARIANT -redis ADDR` builds the variant,
// prints "listening ADDR" (or "noredis MESSAGE", or "error MESSAGE") on its
// standard output, serves until its standard input is closed, answers
// GET /_mem with "HEAP RSS" and GET /_cpu with its CPU time in nanoseconds,
// and takes the heap as the zero of /_mem's at POST /_mem.

// startChild serves v in a child process with GOMAXPROCS procs.
func startChild(v variant, redisAddr string, procs int) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve", v.name, "-redis", redisAddr)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	word, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	if err != nil || word != "listening" {
		_ = stdin.Close()
		_ = cmd.Wait()
		switch {
		case word == "noredis":
			return nil, fmt.Errorf("%w: %s", errNoRedis, rest)
		case err != nil:
			return nil, fmt.Errorf("server process: %v", err)
		}
		return nil, fmt.Errorf("server process: %s", rest)
	}
	addr := rest
	return &server{
		addr: addr,
		mark: func() error {
			status, _, err := fasthttp.Post(nil, "http://"+addr+"/_mem", nil)
			if err == nil && status != fasthttp.StatusNoContent {
				err = fmt.Errorf("status %d", status)
			}
			if err != nil {
				return fmt.Errorf("POST /_mem: %w", err)
			}
			return nil
		},
		mem: func() (uint64, uint64, error) {
			status, body, err := fasthttp.GetTimeout(nil, "http://"+addr+"/_mem", time.Minute)
			if err != nil || status != fasthttp.StatusOK {
				return 0, 0, fmt.Errorf("GET /_mem: %d %v", status, err)
			}
			var heap, rss uint64
			_, err = fmt.Sscan(string(body), &heap, &rss)
			return heap, rss, err
		},
		cpu: func() time.Duration {
			status, body, err := fasthttp.GetTimeout(nil, "http://"+addr+"/_cpu", time.Minute)
			if err != nil || status != fasthttp.StatusOK {
				return 0
			}
			ns, _ := strconv.ParseInt(string(body), 10, 64)
			return time.Duration(ns)
		},
		stop: func() {
			_ = stdin.Close()
			_ = cmd.Wait()
		},
	}, nil
}

// serveChild is the child process's main.
func serveChild(name, redisAddr string) int {
	v, ok := findVariant(name)
	if !ok {
		fmt.Println("error no variant", name)
		return 2
	}
	app, release, err := v.build(redisAddr)
	if err != nil {
		if errors.Is(err, errNoRedis) {
			fmt.Println("noredis", err)
		} else {
			fmt.Println("error", err)
		}
		return 1
	}
	var before atomic.Uint64
	app.Post("/_mem", func(c *fiber.Ctx) error {
		settle(app, 1) // this request's
		before.Store(heapAfterGC())
		return c.SendStatus(fiber.StatusNoContent)
	})
	app.Get("/_mem", func(c *fiber.Ctx) error {
		settle(app, 1)
		h := heapAfterGC()
		return c.SendString(fmt.Sprint(h-min(before.Load(), h), rss()))
	})
	app.Get("/_cpu", func(c *fiber.Ctx) error { return c.SendString(strconv.FormatInt(int64(cpuTime()), 10)) })
	ln, err := listen(app)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("listening", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it, or exits
	_ = app.ShutdownWithTimeout(5 * time.Second)
	release()
	return 0
}
