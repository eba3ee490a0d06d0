package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// LogRecordsDroppedName counts log records dropped because their queue was
// full, by log: "function" (what functions log and the invocation records)
// or "platform" (the server's own log).
const LogRecordsDroppedName = "aegis_log_records_dropped_total"

// The log label's values.
const (
	LogFunction = "function"
	LogPlatform = "platform"
)

// ReadLogDrops makes every scrape report dropped() as the dropped records
// of log. Calling it again for the same log keeps the first reader.
func (m *Metrics) ReadLogDrops(log string, dropped func() int64) {
	if m == nil || dropped == nil {
		return
	}
	m.register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        LogRecordsDroppedName,
		Help:        "Log records dropped because the queue in front of a slow log was full, by log (function, platform). A marker record in that log says how many, once it can be written.",
		ConstLabels: prometheus.Labels{"log": log},
	}, func() float64 { return float64(dropped()) }))
}

// register adds a collector once; a second one for the same series is
// ignored rather than a panic at startup.
func (m *Metrics) register(c prometheus.Collector) {
	var are prometheus.AlreadyRegisteredError
	if err := m.reg.Register(c); err != nil && !errors.As(err, &are) {
		panic("metrics: " + err.Error()) // a programming error: two metrics of one name with different shapes
	}
}
