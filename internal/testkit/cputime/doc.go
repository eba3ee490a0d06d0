// Package cputime reads the CPU time the test process has used, for
// benchmarks that report CPU per operation beside wall time: on a shared
// machine wall time swings with others' load, CPU time far less.
package cputime
