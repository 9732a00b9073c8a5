// Command vercheck compares a version with a bound, for .ci/published:
//
//	vercheck NAME GOT MAX
//
// prints "NAME GOT (at most MAX): ok" and exits 0 when GOT <= MAX, or says
// what is wrong and exits 1. GOT and MAX are module versions (v1.51.0) or go
// lines (1.23, 1.23.0, which are equal here); "none" for GOT means the
// module is not in the graph, which is within any bound.
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/semver"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: vercheck NAME GOT MAX")
		os.Exit(2)
	}
	name, got, max := os.Args[1], os.Args[2], os.Args[3]
	if got == "none" {
		fmt.Printf("%s not in the module graph (at most %s): ok\n", name, max)
		return
	}
	g, m := canonical(got), canonical(max)
	if !semver.IsValid(g) || !semver.IsValid(m) {
		fmt.Printf("%s %s (at most %s): cannot compare\n", name, got, max)
		os.Exit(1)
	}
	if semver.Compare(g, m) > 0 {
		fmt.Printf("%s %s: above %s\n", name, got, max)
		os.Exit(1)
	}
	fmt.Printf("%s %s (at most %s): ok\n", name, got, max)
}

// canonical makes a go line ("1.23") a semantic version ("v1.23").
func canonical(v string) string {
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	return v
}
