//go:build !unix

package main

import "time"

// cpuTime is 0 where getrusage is missing: no CPU column.
func cpuTime() time.Duration { return 0 }
