// Package vulnlib is a fixture of the Aegis test suite: a library whose
// versions below v1.2.0 the fixture vulnerability database lists.
package vulnlib

// Parse returns its input.
func Parse(s string) string { return s }

// Format returns its input.
func Format(s string) string { return s }

// Version names the library; no vulnerability is in it.
func Version() string { return "vulnlib" }
