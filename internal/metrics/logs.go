package metrics

import (
	"errors"
	"regexp"
	"sort"

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
	if err := m.reg.Register(c); err != nil {
		if !errors.As(err, &are) {
			panic("metrics: " + err.Error()) // a programming error: two metrics of one name with different shapes
		}
		return
	}
	m.mu.Lock()
	m.registered = append(m.registered, c)
	m.mu.Unlock()
}

// mustRegister adds collectors New builds.
func (m *Metrics) mustRegister(cs ...prometheus.Collector) {
	m.reg.MustRegister(cs...)
	m.mu.Lock()
	m.registered = append(m.registered, cs...)
	m.mu.Unlock()
}

var fqName = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)

// Names lists the name of every metric registered, series or not, sorted:
// what a dashboard or an alert may query (docs/metrics.md). Histograms
// are named once, without the _bucket, _sum and _count of their series.
func (m *Metrics) Names() []string {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	cs := append([]prometheus.Collector(nil), m.registered...)
	m.mu.Unlock()
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range cs {
			c.Describe(ch)
		}
		close(ch)
	}()
	seen := map[string]bool{}
	for d := range ch {
		// Desc keeps its name unexported; its String form starts with it.
		if sub := fqName.FindStringSubmatch(d.String()); sub != nil {
			seen[sub[1]] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
