package rbac

import (
	"slices"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/manifest"
)

func parse(t *testing.T, text string) *manifest.Manifest {
	t.Helper()
	if text == "" {
		return nil
	}
	m, err := manifest.Parse("aegis.yaml", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return m
}

const base = `app: shop
functions:
  pay:
    source: ./pay
    triggers:
      - http: { method: POST, path: "/pay" }
      - http: { method: GET, path: "/status/{id}", public: true }
      - event: { topic: orders.paid, max_attempts: 2 }
    grants:
      kv: { write: [orders], read: ["cache*"] }
      objects: { write: ["receipts/*"] }
      events: { publish: [orders.paid] }
      egress: { hosts: ["*.stripe.test"] }
    limits: { timeout: 2s, memory: 32MiB, concurrency: 4, max_body: 1KiB, max_response: 64KiB }
`

func TestDangerousChanges(t *testing.T) {
	tests := []struct {
		name      string
		old, next string
		want      []string // exact, in order
	}{
		{name: "same manifest", old: base, next: base},
		{name: "everything tightened",
			old: base,
			next: strings.NewReplacer("timeout: 2s", "timeout: 1s", "max_attempts: 2", "max_attempts: 1",
				`"*.stripe.test"`, `"api.stripe.test"`, "public: true", "auth: [api-key]").Replace(base)},
		{name: "private route served by the gateway",
			old:  strings.Replace(base, `path: "/pay" }`, `path: "/pay", private: true }`, 1),
			next: base,
			want: []string{"route POST /pay is no longer private"}},
		{name: "route made private", old: base,
			next: strings.Replace(base, `path: "/pay" }`, `path: "/pay", private: true }`, 1)},
		{name: "rule dropped",
			old:  strings.Replace(base, `path: "/pay" }`, `path: "/pay", rule: "identity.subject == 'ci'" }`, 1),
			next: base,
			want: []string{"route POST /pay loses its rule"}},
		{name: "rule added", old: base,
			next: strings.Replace(base, `path: "/pay" }`, `path: "/pay", rule: "identity.subject == 'ci'" }`, 1)},
		{name: "route becomes public",
			old:  base,
			next: strings.Replace(base, `path: "/pay" }`, `path: "/pay", public: true }`, 1),
			want: []string{"route POST /pay becomes public"}},
		{name: "public route renamed parameter is the same route",
			old:  base,
			next: strings.Replace(base, `/status/{id}`, `/status/{order}`, 1)},
		{name: "public route moved to another function was public before",
			old: base,
			next: strings.Replace(base, `      - http: { method: GET, path: "/status/{id}", public: true }
`, "", 1) + `  status:
    source: ./pay
    triggers:
      - http: { method: GET, path: "/status/{id}", public: true }
`},
		{name: "new public route",
			old: base,
			next: base + `  health:
    source: ./pay
    triggers:
      - http: { method: GET, path: "/health", public: true }
`,
			want: []string{"route GET /health becomes public"}},
		{name: "new app: public route counts, defaults do not",
			next: `app: shop
functions:
  open:
    source: ./x
    triggers:
      - http: { method: GET, path: "/open", public: true }
      - event: { topic: t }
`,
			want: []string{"route GET /open becomes public"}},
		{name: "new app above the default limits",
			next: `app: shop
functions:
  big:
    source: ./x
    limits: { timeout: 30s, memory: 128MiB }
`,
			want: []string{"function big raises limit timeout from 5s to 30s", "function big raises limit memory from 64MiB to 128MiB"}},
		{name: "wildcard grants",
			old: base,
			next: strings.NewReplacer(
				`publish: [orders.paid]`, `publish: [orders.paid, "orders.*"]`,
				`hosts: ["*.stripe.test"]`, `hosts: ["*.stripe.test", "*.example.test"]`,
				`objects: { write: ["receipts/*"] }`, `objects: { write: ["receipts/*", "*"], read: ["receipts/*"] }`,
			).Replace(base),
			want: []string{
				`function pay gains wildcard grant objects.write "*"`,
				`function pay gains wildcard grant events.publish "orders.*"`,
				`function pay gains wildcard grant egress.hosts "*.example.test"`,
			}},
		{name: "wildcard moved to another function",
			old: base,
			next: base + `  other:
    source: ./pay
    grants:
      kv: { read: ["cache*"] }
`,
			want: []string{`function other gains wildcard grant kv.read "cache*"`}},
		{name: "read widened to write",
			old:  base,
			next: strings.Replace(base, `kv: { write: [orders], read: ["cache*"] }`, `kv: { write: [orders, "cache*"] }`, 1),
			want: []string{`function pay gains wildcard grant kv.write "cache*"`}},
		{name: "secret granted",
			old: strings.Replace(base, `egress: { hosts: ["*.stripe.test"] }`, `egress: { hosts: ["*.stripe.test"] }
      secrets: [STRIPE_KEY]`, 1),
			next: strings.Replace(base, `egress: { hosts: ["*.stripe.test"] }`, `egress: { hosts: ["*.stripe.test"] }
      secrets: [STRIPE_KEY, db.password]`, 1),
			want: []string{`function pay gains secret "db.password"`}},
		{name: "secret granted to a new function",
			old: base,
			next: base + `  other:
    source: ./pay
    grants:
      secrets: [STRIPE_KEY]
`,
			want: []string{`function other gains secret "STRIPE_KEY"`}},
		{name: "secret dropped",
			old: strings.Replace(base, `egress: { hosts: ["*.stripe.test"] }`, `egress: { hosts: ["*.stripe.test"] }
      secrets: [STRIPE_KEY]`, 1),
			next: base},
		{name: "limits raised",
			old: base,
			next: strings.Replace(base, "limits: { timeout: 2s, memory: 32MiB, concurrency: 4, max_body: 1KiB, max_response: 64KiB }",
				"limits: { timeout: 3s, memory: 48MiB, concurrency: 5, max_body: 2KiB, max_response: 128KiB }", 1),
			want: []string{
				"function pay raises limit timeout from 2s to 3s",
				"function pay raises limit memory from 32MiB to 48MiB",
				"function pay raises limit concurrency from 4 to 5",
				"function pay raises limit max_body from 1KiB to 2KiB",
				"function pay raises limit max_response from 64KiB to 128KiB",
			}},
		{name: "limit removed means the default, which is higher",
			old:  base,
			next: strings.Replace(base, "timeout: 2s, ", "", 1),
			want: []string{"function pay raises limit timeout from 2s to 5s"}},
		{name: "max attempts raised",
			old:  base,
			next: strings.Replace(base, "max_attempts: 2", "max_attempts: 9", 1),
			want: []string{"function pay raises max_attempts of event trigger orders.paid from 2 to 9"}},
		{name: "max attempts left to the default is a raise from 2",
			old:  base,
			next: strings.Replace(base, ", max_attempts: 2", "", 1),
			want: []string{"function pay raises max_attempts of event trigger orders.paid from 2 to 3"}},
		{name: "several at once, routes first",
			old: base,
			next: strings.NewReplacer(`path: "/pay" }`, `path: "/pay", public: true }`,
				"concurrency: 4", "concurrency: 40").Replace(base),
			want: []string{"route POST /pay becomes public", "function pay raises limit concurrency from 4 to 40"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, next := parse(t, tt.old), parse(t, tt.next)
			got := DangerousChanges(old, next)
			if !slices.Equal(got, tt.want) {
				t.Errorf("DangerousChanges:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

// The snapshot holds manifests with defaults applied; comparing against one
// must give the same answer as against the parsed text.
func TestDangerousChangesWithDefaultsApplied(t *testing.T) {
	old := parse(t, base)
	next := parse(t, strings.Replace(base, "timeout: 2s", "timeout: 4s", 1))
	a := DangerousChanges(old, next)
	b := DangerousChanges(old.WithDefaults(), next)
	if !slices.Equal(a, b) || len(a) != 1 {
		t.Errorf("raw %q, with defaults %q", a, b)
	}
	if DangerousChanges(old, nil) != nil {
		t.Error("nil next is not dangerous")
	}
}
