//go:build aegis_notrace

package telemetry

// Tracing is false in the benchmark's baseline build (-tags
// aegis_notrace): no trace context is made or carried, no span id minted,
// and records carry no trace. Never shipped; bench scenario 13 only.
const Tracing = false
