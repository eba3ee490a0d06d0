package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/manifest"
)

// TestAdvise: the travel diary deployed with over-broad grants, one upload
// through it, and `aegis advise` narrows save-entry's wildcards to what it
// used (entries, images/*, image.saved); get-entry, never invoked, is
// advised from its module's imports, which hold no publish. The text
// output is a YAML block of manifest grants.
func TestAdvise(t *testing.T) {
	in := startServer(t, t.TempDir())
	dir := filepath.Join(t.TempDir(), "travel-diary")
	if err := os.CopyFS(dir, os.DirFS("../../examples/travel-diary")); err != nil {
		t.Fatal(err)
	}
	// The copy's module points at this repository's SDK, as the example's
	// own does from its place in the tree.
	sdk, err := filepath.Abs("../../sdk/go")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	gomod = []byte(strings.Replace(string(gomod), "=> ../../sdk/go", "=> "+sdk, 1))
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644); err != nil {
		t.Fatal(err)
	}
	broad, err := os.ReadFile("testdata/travel-diary-broad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "aegis.yaml"), broad, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := aegisCLIStdin(t, in, diaryNotifyToken, "secrets", "set", "travel-diary", "notify-token"); code != 0 {
		t.Fatalf("aegis secrets set: exit %d %s", code, errs)
	}

	// An app not deployed is a 404 that says so.
	if code, out, errs := aegisCLI(t, in, "advise", "travel-diary"); code == 0 || !strings.Contains(errs, "not found") {
		t.Errorf("advise before the deploy: exit %d, %q %q: want a 404 saying not found", code, out, errs)
	}
	if code, out, errs := aegisCLI(t, in, "deploy", "-f", filepath.Join(dir, "aegis.yaml")); code != 0 {
		t.Fatalf("aegis deploy: exit %d\n%s\n%s", code, out, errs)
	}
	// Before any traffic, the advice says there are no observations.
	advice := func() adminapi.Advice {
		t.Helper()
		code, out, errs := aegisCLI(t, in, "advise", "travel-diary", "-o", "json")
		if code != 0 {
			t.Fatalf("aegis advise -o json: exit %d: %s", code, errs)
		}
		var a adminapi.Advice
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("aegis advise -o json: %v: %s", err, out)
		}
		return a
	}
	if a := advice(); a.Observed || !strings.Contains(a.Note, "no observations") {
		t.Errorf("advice before any traffic: observed %v, note %q", a.Observed, a.Note)
	}

	code, out, errs := aegisCLI(t, in, "keys", "create", "diary", "-o", "json")
	if code != 0 {
		t.Fatalf("aegis keys create: %d %s", code, errs)
	}
	var k struct{ Key string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.Key == "" {
		t.Fatalf("keys create -o json: %q", out)
	}
	entry := map[string]string{"title": "Porto", "text": "Bridges.", "image": base64.StdEncoding.EncodeToString(samplePNG(t, 64, 48))}
	if st, body, _ := call(t, in.gateway, "POST", "/entries", k.Key, entry); st != 201 {
		t.Fatalf("POST /entries: %d %s", st, body)
	}

	byName := map[string]adminapi.FunctionAdvice{}
	eventually(t, 30*time.Second, "the chain to be observed down to index-entry", func() bool {
		a := advice()
		clear(byName)
		for _, f := range a.Functions {
			byName[f.Function] = f
		}
		return a.Observed && byName["index-entry"].Invocations > 0
	})
	save := byName["save-entry"]
	want := manifest.Grants{
		KV:      manifest.ReadWrite{Write: []string{"entries"}},
		Objects: manifest.ReadWrite{Write: []string{"images/*"}},
		Events:  manifest.EventGrants{Publish: []string{"image.saved"}},
	}
	if save.Evidence != adminapi.EvidenceObserved || !reflect.DeepEqual(save.Advised, want) {
		t.Errorf("save-entry: evidence %q, advised %+v; want observed, %+v", save.Evidence, save.Advised, want)
	}
	if save.Current.KV.Write[0] != "*" || len(save.Changes) != 3 {
		t.Errorf("save-entry: current %+v, changes %+v: want the wildcards, three narrowed", save.Current, save.Changes)
	}
	for _, c := range save.Changes {
		if c.Action != adminapi.ActionNarrow || c.Grant != "*" || c.Reason == "" {
			t.Errorf("save-entry change %+v: want each wildcard narrowed, with a reason", c)
		}
	}
	get := byName["get-entry"]
	if get.Evidence != adminapi.EvidenceImports || get.Invocations != 0 || slices.Contains(get.Imports, "publish") || !slices.Contains(get.Imports, "kv_get") {
		t.Errorf("get-entry: evidence %q, invocations %d, imports %q: want imports without publish", get.Evidence, get.Invocations, get.Imports)
	}
	wantGet := manifest.Grants{KV: manifest.ReadWrite{Read: []string{"entries"}}, Objects: manifest.ReadWrite{Read: []string{"thumbs/*"}}}
	if !reflect.DeepEqual(get.Advised, wantGet) || len(get.Changes) != 1 || get.Changes[0].Field != "events.publish" || get.Changes[0].Action != adminapi.ActionDrop {
		t.Errorf("get-entry: advised %+v, changes %+v: want the publish grant dropped, the rest kept", get.Advised, get.Changes)
	}
	if idx := byName["index-entry"]; !reflect.DeepEqual(idx.Advised, idx.Current) || len(idx.Changes) != 0 {
		t.Errorf("index-entry, already narrow: advised %+v, changes %+v", idx.Advised, idx.Changes)
	}

	// The text output parses as function → grants, with the reasons as
	// comments.
	code, text, errs := aegisCLI(t, in, "advise", "travel-diary")
	if code != 0 {
		t.Fatalf("aegis advise: exit %d: %s", code, errs)
	}
	var block map[string]struct {
		Grants manifest.Grants `yaml:"grants"`
	}
	if err := yaml.Unmarshal([]byte(text), &block); err != nil {
		t.Fatalf("aegis advise output is not YAML: %v\n%s", err, text)
	}
	if !reflect.DeepEqual(block["save-entry"].Grants, want) || len(block) != 5 {
		t.Errorf("text block: save-entry %+v, %d functions; want %+v of 5\n%s", block["save-entry"].Grants, len(block), want, text)
	}
	for _, s := range []string{"# save-entry: evidence: observed", `narrow kv.write "*" → entries`, "# get-entry: evidence: the module's imports", "does not import publish"} {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q:\n%s", s, text)
		}
	}
}
