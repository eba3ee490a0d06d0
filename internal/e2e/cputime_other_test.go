//go:build !unix

package e2e

import "time"

// processCPU is not measured on this platform; the hot-path benchmarks
// then leave out their CPU per request.
func processCPU() time.Duration { return 0 }
