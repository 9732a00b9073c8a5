package storetest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on loopback in front of a real server, for fault
// tests. It fakes the two ways a server goes away:
//
//   - Stop makes the server unreachable: open connections are cut and new
//     ones refused, until Start brings it back on the same address.
//   - Freeze makes it hang: connections stay open and new ones are
//     accepted, but no byte is forwarded either way until Thaw. Bytes a
//     client sent meanwhile are held, not dropped, and reach the server at
//     Thaw, even if the client has given up and closed its connection since
//     (a frozen server's kernel keeps what it received, and the server
//     processes it when it wakes): a write that timed out on the client may
//     still be carried out.
//
// The two combine: Stop cuts frozen connections and drops the bytes they
// hold; a proxy started again while frozen accepts connections but forwards
// nothing until Thaw. Every method is safe for concurrent use.
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	mu     sync.Mutex
	cond   *sync.Cond // signalled when frozen turns false or a pair is cut
	ln     net.Listener
	pairs  map[*pair]struct{}
	frozen bool
	wg     sync.WaitGroup
}

// pair is one proxied connection: c from the client, s to the server.
type pair struct {
	c, s net.Conn
	cut  bool // closed by Stop (guarded by Proxy.mu)
	done sync.WaitGroup
}

// NewProxy starts a proxy to target and stops it when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, target: target, addr: ln.Addr().String(), pairs: map[*pair]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.serve(ln)
	t.Cleanup(p.Stop)
	return p
}

// Addr is the proxy's address, host:port, stable across Stop and Start.
func (p *Proxy) Addr() string { return p.addr }

// Start accepts connections again after Stop. It does nothing while the
// proxy accepts connections.
func (p *Proxy) Start() {
	p.t.Helper()
	p.mu.Lock()
	running := p.ln != nil
	p.mu.Unlock()
	if running {
		return
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// Stop closes the listener and every open connection, dropping what a
// frozen connection holds, and waits until the proxy's goroutines have
// exited. It does not thaw a frozen proxy.
func (p *Proxy) Stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for pr := range p.pairs {
		pr.cut = true
		pr.c.Close()
		pr.s.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

// Freeze stops forwarding bytes on every connection, open or new, until
// Thaw. When it returns, no byte that the proxy reads afterwards reaches
// the other side before Thaw.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// Thaw forwards again, first the bytes held since Freeze.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	p.frozen = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			pr := &pair{c: c, s: s}
			if !p.track(pr) {
				return
			}
			pr.done.Add(2)
			p.wg.Add(3)
			go p.pipe(pr, s, c)
			go p.pipe(pr, c, s)
			go func() {
				defer p.wg.Done()
				pr.done.Wait()
				c.Close()
				s.Close()
				p.mu.Lock()
				delete(p.pairs, pr)
				p.mu.Unlock()
			}()
		}
	}()
}

// track registers a connection pair unless the proxy was stopped meanwhile.
func (p *Proxy) track(pr *pair) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		pr.c.Close()
		pr.s.Close()
		return false
	}
	p.pairs[pr] = struct{}{}
	return true
}

// pipe copies src to dst, holding each chunk while the proxy is frozen.
// When src ends cleanly it half-closes dst, as a TCP peer's FIN would, so
// that the other side still gets what was sent before; on any other error
// it closes both connections.
func (p *Proxy) pipe(pr *pair, dst, src net.Conn) {
	defer p.wg.Done()
	defer pr.done.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.await(pr) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				pr.c.Close()
				pr.s.Close()
				return
			}
		}
		if errors.Is(err, io.EOF) {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
				return
			}
		}
		if err != nil {
			pr.c.Close()
			pr.s.Close()
			return
		}
	}
}

// await waits while the proxy is frozen, and reports whether the pair is
// still open.
func (p *Proxy) await(pr *pair) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.frozen && !pr.cut {
		p.cond.Wait()
	}
	return !pr.cut
}
