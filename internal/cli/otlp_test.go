package cli

import (
	"testing"

	"github.com/aegis-platform/aegis/internal/otlp"
)

func TestOTLPConfig(t *testing.T) {
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://from-env:4318",
		"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization=Bearer%20t",
	}
	getenv := func(k string) string { return env[k] }
	if c := otlpConfig(otlp.Config{}, getenv); c.Endpoint != "http://from-env:4318/v1/traces" || c.Headers["Authorization"] != "Bearer t" {
		t.Errorf("from the environment: %+v", c)
	}
	if c := otlpConfig(otlp.Config{Endpoint: "https://flag:4318", SampleRatio: 0.5}, getenv); c.SampleRatio != 0.5 || c.Endpoint != "https://flag:4318/v1/traces" || c.Headers["Authorization"] != "Bearer t" {
		t.Errorf("the flag wins over the environment's endpoint: %+v", c)
	}
	if c := otlpConfig(otlp.Config{}, func(string) string { return "" }); c.Endpoint != "" {
		t.Errorf("nothing set exports: %+v", c)
	}
	var r ratioFlag
	for _, bad := range []string{"0", "1.5", "-0.1", "half", "NaN"} {
		if r.Set(bad) == nil {
			t.Errorf("--otlp-sample-ratio %s accepted", bad)
		}
	}
	if r.Set("0.25") != nil || float64(r) != 0.25 {
		t.Errorf("--otlp-sample-ratio 0.25 gives %v", r)
	}
}
