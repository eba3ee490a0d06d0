package metrics

import "github.com/prometheus/client_golang/prometheus"

// Names of the instance pool metrics.
const (
	ColdStartsName    = "aegis_cold_starts_total"
	WarmInstancesName = "aegis_warm_instances"
)

// Pools is what the pool collector reads at scrape time: for every
// function, the invocations that had to create their instance since the
// server started (across versions) and the instances idle and ready now.
// The sandbox engine implements it.
type Pools interface {
	PoolStats(fn func(app, function string, coldStarts uint64, warm int))
}

// ReadPools makes every scrape report src's pools as aegis_cold_starts_total
// and aegis_warm_instances. Call it once, when src exists.
func (m *Metrics) ReadPools(src Pools) {
	if m == nil || src == nil {
		return
	}
	labels := []string{"app", "function"}
	m.register(&poolCollector{src: src,
		cold: prometheus.NewDesc(ColdStartsName,
			"Invocations that found no warm instance and created one on the request path, by app and function.", labels, nil),
		warm: prometheus.NewDesc(WarmInstancesName,
			"Instances idle and ready to serve, by app and function (versions still draining included).", labels, nil),
	})
}

type poolCollector struct {
	src        Pools
	cold, warm *prometheus.Desc
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.cold; ch <- c.warm }

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.src.PoolStats(func(app, function string, coldStarts uint64, warm int) {
		ch <- prometheus.MustNewConstMetric(c.cold, prometheus.CounterValue, float64(coldStarts), app, function)
		ch <- prometheus.MustNewConstMetric(c.warm, prometheus.GaugeValue, float64(warm), app, function)
	})
}
