package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Options are a run's settings (the flags).
type Options struct {
	Users        int           // simulated users, each with its own cookie jar and connection
	Duration     time.Duration // the mixed phase of each variant (0 with Requests 0: skipped)
	ReadDuration time.Duration // the read-route phase of each variant (likewise)
	Requests     int64         // > 0: each phase stops after this many requests instead
	Warmup       time.Duration // before each phase, not counted
	Rounds       int           // every variant runs once per round; the table shows medians
	RedisAddr    string        // the Redis of the Redis variants
	ServerProcs  int           // > 0: the server runs in a child process with this GOMAXPROCS
	Seed         uint64        // of the users' random choices
	Log          io.Writer     // progress; nil for none
}

// phaseResult is what the users saw in one phase.
type phaseResult struct {
	Requests int64
	Elapsed  time.Duration
	RPS      float64
	P50, P99 time.Duration
	// CPU is the CPU time (user and system, users and server) per request:
	// unlike RPS, it does not depend on how much of the machine other
	// processes took during the phase. 0 when unknown.
	CPU time.Duration
}

// result is one variant's figures (medians over the rounds; errors, lost
// writes and requests summed).
type result struct {
	Variant     string
	Skipped     string // why the variant did not run; "" when it ran
	Failed      bool   // it did not run for another reason than a missing Redis
	Mixed, Read phaseResult
	Errors      int64 // transport errors, wrong status, wrong page
	Lost        int64 // acknowledged counter increments the server did not keep
	Heap        uint64
	RSS         uint64   // 0 when not measured (server in this process)
	Samples     []string // the first error messages
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Run runs every variant Rounds times (the rounds interleave the variants, so
// that drift hits all of them alike) and returns one result per variant.
func Run(o Options, vs []variant) []result {
	o.Users, o.Rounds = max(o.Users, 1), max(o.Rounds, 1)
	runs := make([][]result, len(vs))
	skipped := make([]string, len(vs))
	failed := make([]bool, len(vs))
	for round := range o.Rounds {
		for i, v := range vs {
			if skipped[i] != "" {
				continue
			}
			o.logf("round %d/%d: %s", round+1, o.Rounds, v.name)
			r, err := runOnce(o, v)
			if err != nil {
				skipped[i], failed[i] = err.Error(), !errors.Is(err, errNoRedis)
				o.logf("  skipped: %v", err)
				continue
			}
			o.logf("  mixed %.0f req/s, read %.0f req/s, %d errors, %d lost writes, heap %s",
				r.Mixed.RPS, r.Read.RPS, r.Errors, r.Lost, bytesStr(r.Heap))
			runs[i] = append(runs[i], r)
		}
	}
	out := make([]result, len(vs))
	for i, v := range vs {
		out[i] = aggregate(v.name, runs[i])
		if len(runs[i]) == 0 {
			out[i].Skipped, out[i].Failed = skipped[i], failed[i]
		} else if skipped[i] != "" {
			// A later round failed: the figures are those of the rounds that ran.
			out[i].Failed = true
			out[i].Samples = append(out[i].Samples, skipped[i])
		}
	}
	return out
}

func aggregate(name string, rs []result) result {
	r := result{Variant: name}
	if len(rs) == 0 {
		return r
	}
	med := func(f func(result) float64) float64 {
		xs := make([]float64, len(rs))
		for i, x := range rs {
			xs[i] = f(x)
		}
		slices.Sort(xs)
		if n := len(xs); n%2 == 0 {
			return (xs[n/2-1] + xs[n/2]) / 2
		}
		return xs[len(xs)/2]
	}
	phase := func(f func(result) phaseResult) phaseResult {
		p := phaseResult{
			RPS: med(func(x result) float64 { return f(x).RPS }),
			P50: time.Duration(med(func(x result) float64 { return float64(f(x).P50) })),
			P99: time.Duration(med(func(x result) float64 { return float64(f(x).P99) })),
			CPU: time.Duration(med(func(x result) float64 { return float64(f(x).CPU) })),
		}
		for _, x := range rs {
			p.Requests += f(x).Requests
			p.Elapsed += f(x).Elapsed
		}
		return p
	}
	r.Mixed = phase(func(x result) phaseResult { return x.Mixed })
	r.Read = phase(func(x result) phaseResult { return x.Read })
	r.Heap = uint64(med(func(x result) float64 { return float64(x.Heap) }))
	r.RSS = uint64(med(func(x result) float64 { return float64(x.RSS) }))
	for _, x := range rs {
		r.Errors += x.Errors
		r.Lost += x.Lost
		for _, s := range x.Samples {
			if len(r.Samples) < 8 {
				r.Samples = append(r.Samples, s)
			}
		}
	}
	return r
}

// runOnce serves v, runs the mixed phase and the read phase, and measures
// the server's memory with the sessions the phases left.
func runOnce(o Options, v variant) (result, error) {
	var srv *server
	var err error
	if o.ServerProcs > 0 {
		srv, err = startChild(v, o.RedisAddr, o.ServerProcs)
	} else {
		srv, err = startInProcess(v, o.RedisAddr)
	}
	if err != nil {
		if errors.Is(err, errNoRedis) {
			return result{}, err
		}
		return result{}, fmt.Errorf("%s: %w", v.name, err)
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.stop()
		}
	}()
	hc := &fasthttp.HostClient{
		Addr:                srv.addr,
		MaxConns:            o.Users + 8,
		ReadTimeout:         30 * time.Second,
		WriteTimeout:        30 * time.Second,
		MaxIdleConnDuration: time.Minute,
	}
	samples := &errSamples{}
	users := make([]*user, o.Users)
	for i := range users {
		users[i] = newUser(i, hc, "http://"+srv.addr, v.stateful, o.Seed, samples)
	}

	// Before the server's heap is taken as its zero: every user visits once
	// (which stores nothing), so that the connections, goroutines and pools
	// exist; and one user signs in, counts, flashes, signs in again and signs
	// out, so that what the variant builds on first use (encoders compiled
	// for the types) exists too. In this process the heap holds the users:
	// they stay alive until it is taken again, at the end.
	each(users, func(u *user) { u.home("") })
	p := users[0]
	p.login()
	p.increment()
	p.flash()
	p.login()
	p.logout()
	each(users, (*user).dropBuffers)
	hc.CloseIdleConnections()
	if err := srv.mark(); err != nil {
		return result{}, fmt.Errorf("%s: memory: %w", v.name, err)
	}

	r := result{Variant: v.name}
	r.Mixed = runPhase(o, srv, users, o.Duration, false)
	each(users, func(u *user) {
		if u.signedIn {
			u.home("") // the final read: every acknowledged write is there
		}
	})
	each(users, func(u *user) {
		if !u.signedIn {
			u.login() // the read phase reads signed-in pages
		}
	})
	r.Read = runPhase(o, srv, users, o.ReadDuration, true)
	each(users, func(u *user) { u.home("") })
	for _, u := range users {
		r.Errors += u.st.errors
		r.Lost += u.st.lost
	}
	r.Samples = samples.msgs

	// Memory: what the server keeps once the connections are closed (the
	// sessions).
	each(users, (*user).dropBuffers)
	hc.CloseIdleConnections()
	if r.Heap, r.RSS, err = srv.mem(); err != nil {
		return r, fmt.Errorf("%s: memory: %w", v.name, err)
	}
	runtime.KeepAlive(users)
	srv.stop()
	stopped = true
	// The goroutines of the stopped server and client end before the next
	// variant's heap is taken.
	time.Sleep(400 * time.Millisecond)
	return r, nil
}

// each runs f for every user at once and waits.
func each(users []*user, f func(*user)) {
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(u)
		}()
	}
	wg.Wait()
}

// runPhase runs a warm-up (not counted), then the phase: every user does the
// mix (or reads only) until d has passed, or Requests requests were sent.
func runPhase(o Options, srv *server, users []*user, d time.Duration, readOnly bool) phaseResult {
	if d <= 0 && o.Requests <= 0 {
		return phaseResult{}
	}
	if o.Warmup > 0 {
		ph := &phase{}
		t := time.AfterFunc(o.Warmup, func() { ph.stop.Store(true) })
		each(users, func(u *user) { u.run(ph, false, readOnly) })
		t.Stop()
	}
	for _, u := range users {
		u.st.hist, u.st.requests = hist{}, 0
	}
	ph := &phase{limit: o.Requests}
	if o.Requests <= 0 {
		t := time.AfterFunc(d, func() { ph.stop.Store(true) })
		defer t.Stop()
	}
	cpu0 := cpuTime() + srv.cpu()
	start := time.Now()
	each(users, func(u *user) { u.run(ph, true, readOnly) })
	p := phaseResult{Elapsed: time.Since(start)}
	cpu := cpuTime() + srv.cpu() - cpu0
	var h hist
	for _, u := range users {
		h.merge(&u.st.hist)
		p.Requests += u.st.requests
	}
	p.RPS = float64(p.Requests) / p.Elapsed.Seconds()
	p.P50, p.P99 = h.quantile(0.50), h.quantile(0.99)
	if cpu0 > 0 && p.Requests > 0 {
		p.CPU = cpu / time.Duration(p.Requests)
	}
	return p
}
