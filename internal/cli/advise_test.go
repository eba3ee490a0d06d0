package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/manifest"
)

// The text output is YAML that parses back, function by function, to the
// advised grants, with the evidence and reasons as comments.
func TestWriteAdviceText(t *testing.T) {
	save := manifest.Grants{
		KV:      manifest.ReadWrite{Write: []string{"entries"}},
		Objects: manifest.ReadWrite{Read: []string{"thumbs/*"}, Write: []string{"images/*"}},
		Events:  manifest.EventGrants{Publish: []string{"image.saved"}},
		Egress:  manifest.EgressGrants{Hosts: []string{"hooks.example.com:8443"}},
	}
	adv := &client.Advice{App: "travel-diary", Version: 2, Observed: true, Functions: []client.FunctionAdvice{
		{Function: "save-entry", Evidence: client.EvidenceObserved, Invocations: 3, Advised: save,
			Changes: []client.GrantChange{{Field: "kv.write", Grant: "*", Action: client.ActionNarrow, To: []string{"entries"}, Reason: "only \"entries\" used\nunder \"*\""}}},
		{Function: "idle", Evidence: client.EvidenceImports, Imports: []string{"log"}},
	}}
	var b bytes.Buffer
	if err := writeAdviceText(&b, adv); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	var got map[string]struct {
		Grants manifest.Grants `yaml:"grants"`
	}
	if err := yaml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, text)
	}
	if !reflect.DeepEqual(got["save-entry"].Grants, save) {
		t.Errorf("save-entry grants = %+v, want %+v\n%s", got["save-entry"].Grants, save, text)
	}
	if g, ok := got["idle"]; !ok || !reflect.DeepEqual(g.Grants, manifest.Grants{}) {
		t.Errorf("idle = %+v (present %v), want empty grants\n%s", g, ok, text)
	}
	for _, want := range []string{
		"# save-entry: evidence: observed, 3 invocation(s) seen",
		`#   narrow kv.write "*" → entries: only "entries" used under "*"`,
		"# idle: evidence: the module's imports (never seen running): log",
		"objects:\n      read:\n        - thumbs/*",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "egress: {}") || strings.Contains(text, "invoke:") {
		t.Errorf("empty grant kinds written:\n%s", text)
	}
}
