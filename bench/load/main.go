// Command load serves an app built like the example (_example/main.go) on a
// loopback TCP listener and drives it over real HTTP with simulated users,
// once per variant:
//
//	baseline       the same routes and pages, no session at all
//	ours/memory    this library, memory store (the default)
//	ours/redis     this library, stores/redisstore
//	ours/rueidis   this library, stores/rueidisstore (client-side caching)
//	fiber/memory   Fiber v2's middleware/session, its default memory storage
//	fiber/redis    Fiber v2's middleware/session, gofiber/storage/redis/v3
//
// Each user has its own cookie jar and connection and sends one request at a
// time; the users run at once. Each variant runs two phases: a mixed workload
// (new visitors, sign-ins with a new id, reads, counter writes, a flash across
// a 303 redirect, sign-outs; see user.go), then a read-route phase (signed-in
// users reading the page, GET /) whose throughput is compared with the
// baseline's. Each phase is preceded by an uncounted warm-up. The Redis
// variants use SESSION_REDIS_ADDR (default 127.0.0.1:6379) and are skipped,
// with a message, when no Redis answers there.
//
// It prints, per variant, requests/s, p50/p99 latency and CPU time per
// request of each phase, the errors (no answer, a wrong status, a page that is
// not what the user's own history says it must be), the lost acknowledged
// writes (every user tracks the counter values the server acknowledged and
// checks each later page and a final read against them) and the server's Go
// heap after GC with the sessions left by the run; then the read route of
// ours/memory as a share of the baseline's (target ≥ 85%) and its ratio to
// Fiber's middleware. It writes the figures as an SVG bar chart (-svg). It
// exits with status 1 if there was an error or a lost write.
//
//	go run ./bench/load                                    # from the repository root
//	go run ./bench/load -rounds 3 -duration 3s -read-duration 3s
//
// Client and server share the machine's cores: by default the server runs in
// this process, under the same GOMAXPROCS as the users that drive it, so that
// every figure includes the load generator's own work (about half of the CPU
// of a read). With -server-procs N the server runs in a child process with
// GOMAXPROCS=N (and its resident set is reported too), and -client-procs sets
// this process's. CPU time per request counts both processes (not Redis); it
// depends less than requests/s on what other processes take of the machine.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

func main() {
	var (
		o        Options
		names    string
		svgPath  string
		cpuprof  string
		clientP  int
		serve    string
		defRedis = cmp.Or(os.Getenv("SESSION_REDIS_ADDR"), "127.0.0.1:6379")
	)
	var all []string
	for _, v := range variants {
		all = append(all, v.name)
	}
	flag.StringVar(&names, "variants", strings.Join(all, ","), "comma-separated `variants` to run, in this order")
	flag.IntVar(&o.Users, "users", 50, "simulated `users`, each with its own cookie jar and connection")
	flag.DurationVar(&o.Duration, "duration", 5*time.Second, "length of the mixed phase of each variant (0 with -requests 0: skip it)")
	flag.DurationVar(&o.ReadDuration, "read-duration", 5*time.Second, "length of the read-route phase of each variant (0 with -requests 0: skip it)")
	flag.Int64Var(&o.Requests, "requests", 0, "if > 0, end each phase after this many `requests` instead of after its duration")
	flag.DurationVar(&o.Warmup, "warmup", time.Second, "uncounted warm-up before each phase")
	flag.IntVar(&o.Rounds, "rounds", 1, "run every variant this many times, interleaved, and report medians")
	flag.StringVar(&o.RedisAddr, "redis", defRedis, "Redis `address` of the Redis variants (default: SESSION_REDIS_ADDR or 127.0.0.1:6379)")
	flag.IntVar(&o.ServerProcs, "server-procs", 0, "if > 0, run the server in a child process with this GOMAXPROCS")
	flag.IntVar(&clientP, "client-procs", 0, "if > 0, this process's GOMAXPROCS (the users', and the server's unless -server-procs)")
	flag.Uint64Var(&o.Seed, "seed", 1, "seed of the users' random choices")
	flag.StringVar(&svgPath, "svg", "bench/load/load.svg", "write the chart to this `file` (\"\": none)")
	flag.StringVar(&cpuprof, "cpuprofile", "", "write a CPU profile of this process (users and, unless -server-procs, server) to `file`")
	flag.StringVar(&serve, "serve", "", "internal: serve this variant as the child process of -server-procs")
	flag.Parse()
	if serve != "" {
		os.Exit(serveChild(serve, o.RedisAddr))
	}

	var vs []variant
	for _, n := range strings.Split(names, ",") {
		v, ok := findVariant(strings.TrimSpace(n))
		if !ok {
			fmt.Fprintf(os.Stderr, "load: no variant %q (have %s)\n", n, strings.Join(all, ", "))
			os.Exit(2)
		}
		vs = append(vs, v)
	}
	if clientP > 0 {
		runtime.GOMAXPROCS(clientP)
	}
	if cpuprof != "" {
		f, err := os.Create(cpuprof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(2)
		}
		defer f.Close()
	}
	o.Log = os.Stderr

	rs := Run(o, vs)
	if cpuprof != "" {
		pprof.StopCPUProfile()
	}
	header, sub := describe(o)
	ok := report(os.Stdout, header, rs)
	if svgPath != "" {
		if err := writeSVG(svgPath, "fibersession load test", sub, rs); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "load: wrote", svgPath)
	}
	if !ok {
		os.Exit(1)
	}
}

// describe returns the run's settings: a line for the table, a shorter one
// for the chart.
func describe(o Options) (header, short string) {
	procs := fmt.Sprintf("one process, GOMAXPROCS %d shared by server and users", runtime.GOMAXPROCS(0))
	if o.ServerProcs > 0 {
		procs = fmt.Sprintf("server process GOMAXPROCS %d, users GOMAXPROCS %d", o.ServerProcs, runtime.GOMAXPROCS(0))
	}
	length := fmt.Sprintf("mixed %v + read %v per variant", o.Duration, o.ReadDuration)
	if o.Requests > 0 {
		length = fmt.Sprintf("%d requests per phase", o.Requests)
	}
	header = fmt.Sprintf("%s %s/%s, %d CPUs, %s; %d users, %s, warm-up %v, %d round(s) (medians)",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), procs, max(o.Users, 1), length, o.Warmup, max(o.Rounds, 1))
	short = fmt.Sprintf("%d users over loopback HTTP, %s, %d CPUs, %s", max(o.Users, 1), runtime.Version(), runtime.NumCPU(), procs)
	return header, short
}
