//go:build !aegis_notrace

package telemetry

// Tracing is whether requests are traced: always, in every build but the
// benchmark's baseline (-tags aegis_notrace), which bench scenario 13
// measures the released build against to state what tracing costs.
const Tracing = true
