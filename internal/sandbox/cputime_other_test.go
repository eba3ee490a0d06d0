//go:build !unix

package sandbox

import "time"

// processCPU is not measured on this platform; reportCPU then reports 0.
func processCPU() time.Duration { return 0 }
