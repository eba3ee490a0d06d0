//go:build !unix

package cputime

import "time"

// Process is not measured on this platform: it is always 0, and
// benchmarks then leave out their CPU per operation.
func Process() time.Duration { return 0 }
