package cli

import "testing"

func TestOTLPConfig(t *testing.T) {
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://from-env:4318",
		"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization=Bearer%20t",
	}
	getenv := func(k string) string { return env[k] }
	if c := otlpConfig("", getenv); c.Endpoint != "http://from-env:4318/v1/traces" || c.Headers["Authorization"] != "Bearer t" {
		t.Errorf("from the environment: %+v", c)
	}
	if c := otlpConfig("https://flag:4318", getenv); c.Endpoint != "https://flag:4318/v1/traces" || c.Headers["Authorization"] != "Bearer t" {
		t.Errorf("the flag wins over the environment's endpoint: %+v", c)
	}
	if c := otlpConfig("", func(string) string { return "" }); c.Endpoint != "" {
		t.Errorf("nothing set exports: %+v", c)
	}
}
