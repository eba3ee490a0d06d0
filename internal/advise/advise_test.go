package advise

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/manifest"
)

func app(grants map[string]manifest.Grants) *manifest.Manifest {
	m := &manifest.Manifest{App: "diary", Functions: map[string]*manifest.Function{}}
	for name, g := range grants {
		m.Functions[name] = &manifest.Function{Name: name, Grants: g}
	}
	return m
}

// ran is the trigger edge of n invocations of fn.
func ran(fn string, n int64) Use {
	return Use{Kind: KindHTTP, From: "POST /x", To: fn, Count: n}
}

func use(kind, fn, to string, n int64) Use { return Use{Kind: kind, From: fn, To: to, Count: n} }

func TestAdvise(t *testing.T) {
	saveImports := []string{"kv_put", "object_put", "publish", "request_body_read", "response_set"}
	tests := []struct {
		name     string
		grants   manifest.Grants
		edges    []Use
		names    []Use
		imports  []string // nil: module unknown
		evidence string
		want     manifest.Grants
		actions  []string // "field grant action", in order
		reason   string   // a substring of some change's reason
		note     string   // a substring of some note
	}{
		{
			name: "observed: wildcards narrowed to the names used",
			grants: manifest.Grants{
				KV:      manifest.ReadWrite{Write: []string{"*"}},
				Objects: manifest.ReadWrite{Write: []string{"*"}},
				Events:  manifest.EventGrants{Publish: []string{"*"}},
			},
			edges:    []Use{ran("save", 3), use(KindKV, "save", "*", 3), use(KindObjects, "save", "*", 3), use(KindPublish, "save", "*", 3)},
			names:    []Use{use(KindKVWrite, "save", "entries", 3), use(KindObjectsWrite, "save", "images/*", 3), use(KindPublish, "save", "image.saved", 3)},
			imports:  saveImports,
			evidence: adminapi.EvidenceObserved,
			want: manifest.Grants{
				KV:      manifest.ReadWrite{Write: []string{"entries"}},
				Objects: manifest.ReadWrite{Write: []string{"images/*"}},
				Events:  manifest.EventGrants{Publish: []string{"image.saved"}},
			},
			actions: []string{"kv.write * narrow", "objects.write * narrow", "events.publish * narrow"},
			reason:  `only "entries" used under "*" in 3 observed invocation(s)`,
		},
		{
			name:     "observed: an unused grant the module imports is dropped, saying so",
			grants:   manifest.Grants{KV: manifest.ReadWrite{Write: []string{"entries", "audit"}}},
			edges:    []Use{ran("save", 2), use(KindKV, "save", "entries", 2)},
			names:    []Use{use(KindKVWrite, "save", "entries", 2)},
			imports:  saveImports,
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{KV: manifest.ReadWrite{Write: []string{"entries"}}},
			actions:  []string{"kv.write audit drop"},
			reason:   "the module imports kv_put, so a path not seen yet may still need it",
		},
		{
			name:     "observed: an unused grant the module cannot use",
			grants:   manifest.Grants{Egress: manifest.EgressGrants{Hosts: []string{"api.example.com"}}, Secrets: []string{"token"}},
			edges:    []Use{ran("save", 1)},
			imports:  saveImports,
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{},
			actions:  []string{"egress.hosts api.example.com drop", "secrets token drop"},
			reason:   "the module does not import fetch: it cannot use it",
		},
		{
			name:     "observed: a write grant only read through becomes a read grant",
			grants:   manifest.Grants{KV: manifest.ReadWrite{Write: []string{"entries"}}},
			edges:    []Use{ran("get", 5), use(KindKV, "get", "entries", 5)},
			names:    []Use{use(KindKVRead, "get", "entries", 5)},
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{KV: manifest.ReadWrite{Read: []string{"entries"}}},
			actions:  []string{"kv.write entries read-only"},
			reason:   "only read through, never written",
		},
		{
			name:     "observed: a wildcard write read through and written splits",
			grants:   manifest.Grants{Objects: manifest.ReadWrite{Write: []string{"*"}}},
			edges:    []Use{ran("thumb", 2), use(KindObjects, "thumb", "*", 4)},
			names:    []Use{use(KindObjectsRead, "thumb", "images/*", 2), use(KindObjectsWrite, "thumb", "thumbs/*", 2)},
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{Objects: manifest.ReadWrite{Read: []string{"images/*"}, Write: []string{"thumbs/*"}}},
			actions:  []string{"objects.write * narrow", "objects.write * read-only"},
		},
		{
			name:     "observed: a read covered by the read list leaves the write grant unused",
			grants:   manifest.Grants{KV: manifest.ReadWrite{Read: []string{"entries"}, Write: []string{"entries"}}},
			edges:    []Use{ran("get", 1), use(KindKV, "get", "entries", 1)},
			names:    []Use{use(KindKVRead, "get", "entries", 1)},
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{KV: manifest.ReadWrite{Read: []string{"entries"}}},
			actions:  []string{"kv.write entries drop"},
			reason:   "the module is unknown",
		},
		{
			name:     "observed: nested folders reduce to the outer one",
			grants:   manifest.Grants{Objects: manifest.ReadWrite{Write: []string{"*"}}},
			edges:    []Use{ran("save", 2), use(KindObjects, "save", "*", 2)},
			names:    []Use{use(KindObjectsWrite, "save", "images/*", 1), use(KindObjectsWrite, "save", "images/2024/*", 1)},
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{Objects: manifest.ReadWrite{Write: []string{"images/*"}}},
			actions:  []string{"objects.write * narrow"},
		},
		{
			name:     "observed: a wildcard used under too many names is kept",
			grants:   manifest.Grants{KV: manifest.ReadWrite{Write: []string{"t*"}}},
			edges:    []Use{ran("save", 40), use(KindKV, "save", "t*", 40)},
			names:    manyNames(KindKVWrite, "save", MaxNames+1),
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{KV: manifest.ReadWrite{Write: []string{"t*"}}},
			note:     "more than the 16 advice lists",
		},
		{
			name:     "observed: egress wildcard narrowed to the host fetched",
			grants:   manifest.Grants{Egress: manifest.EgressGrants{Hosts: []string{"*.example.com", "api.other.test"}}},
			edges:    []Use{ran("notify", 1), use(KindFetch, "notify", "*.example.com", 1), use(KindFetch, "notify", "api.other.test", 1)},
			names:    []Use{use(KindFetch, "notify", "hooks.example.com", 1), use(KindFetch, "notify", "api.other.test", 1)},
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{Egress: manifest.EgressGrants{Hosts: []string{"hooks.example.com", "api.other.test"}}},
			actions:  []string{"egress.hosts *.example.com narrow"},
		},
		{
			name:     "observed without names: used grants kept as written",
			grants:   manifest.Grants{KV: manifest.ReadWrite{Write: []string{"*", "unused"}}},
			edges:    []Use{ran("save", 1), use(KindKV, "save", "*", 1)},
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{KV: manifest.ReadWrite{Write: []string{"*"}}},
			actions:  []string{"kv.write unused drop"},
			note:     "no names under it were recorded",
		},
		{
			name:     "observed: invoke used kept, secret unused dropped",
			grants:   manifest.Grants{Invoke: []string{"thumb"}, Secrets: []string{"token"}},
			edges:    []Use{ran("save", 1), use(KindInvoke, "save", "thumb", 1)},
			imports:  []string{"invoke", "secret"},
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{Invoke: []string{"thumb"}},
			actions:  []string{"secrets token drop"},
			reason:   "the module imports secret",
		},
		{
			name: "imports: kinds the module does not import are dropped",
			grants: manifest.Grants{
				KV:      manifest.ReadWrite{Read: []string{"entries"}, Write: []string{"entries"}},
				Objects: manifest.ReadWrite{Write: []string{"thumbs/*"}},
				Events:  manifest.EventGrants{Publish: []string{"x"}},
				Egress:  manifest.EgressGrants{Hosts: []string{"*.example.com"}},
			},
			imports:  []string{"kv_get", "object_put", "fetch"},
			evidence: adminapi.EvidenceImports,
			want: manifest.Grants{
				KV:      manifest.ReadWrite{Read: []string{"entries"}},
				Objects: manifest.ReadWrite{Write: []string{"thumbs/*"}},
				Egress:  manifest.EgressGrants{Hosts: []string{"*.example.com"}},
			},
			actions: []string{"kv.write entries read-only", "events.publish x drop"},
			reason:  "does not import publish",
			note:    `"*.example.com" kept as written`,
		},
		{
			name:     "imports: no kv function at all drops reads and writes",
			grants:   manifest.Grants{KV: manifest.ReadWrite{Read: []string{"a"}, Write: []string{"b"}}},
			imports:  []string{"log"},
			evidence: adminapi.EvidenceImports,
			want:     manifest.Grants{},
			actions:  []string{"kv.write b drop", "kv.read a drop"},
			reason:   "imports no kv host function",
		},
		{
			name:     "no evidence: kept as written",
			grants:   manifest.Grants{KV: manifest.ReadWrite{Write: []string{"*"}}},
			evidence: adminapi.EvidenceNone,
			want:     manifest.Grants{KV: manifest.ReadWrite{Write: []string{"*"}}},
			note:     "grants kept as written",
		},
		{
			name:     "refusals are noted, never granted",
			grants:   manifest.Grants{KV: manifest.ReadWrite{Write: []string{"entries"}}},
			edges:    []Use{ran("save", 1), use(KindKV, "save", "entries", 1), {Kind: KindKV, From: "save", To: "users", Refused: 2}},
			names:    []Use{use(KindKVWrite, "save", "entries", 1)},
			evidence: adminapi.EvidenceObserved,
			want:     manifest.Grants{KV: manifest.ReadWrite{Write: []string{"entries"}}},
			note:     `2 kv call(s) to "users" refused outside the grants`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := ""
			for _, u := range append(append([]Use{}, tt.edges...), tt.names...) {
				if u.Kind == KindHTTP {
					fn = u.To
				}
			}
			if fn == "" {
				fn = "idle"
			}
			in := Input{App: "diary", Manifest: app(map[string]manifest.Grants{fn: tt.grants}), Edges: tt.edges, Names: tt.names}
			if tt.imports != nil {
				in.Imports = map[string][]string{fn: tt.imports}
			}
			got := Advise(in)
			if len(got.Functions) != 1 {
				t.Fatalf("functions = %d, want 1", len(got.Functions))
			}
			fa := got.Functions[0]
			if fa.Evidence != tt.evidence {
				t.Errorf("evidence = %q, want %q", fa.Evidence, tt.evidence)
			}
			if !reflect.DeepEqual(normal(fa.Advised), normal(tt.want)) {
				t.Errorf("advised = %+v, want %+v", fa.Advised, tt.want)
			}
			if !reflect.DeepEqual(fa.Current, tt.grants) {
				t.Errorf("current = %+v, want the grants as given", fa.Current)
			}
			var actions []string
			reasons := ""
			for _, c := range fa.Changes {
				actions = append(actions, c.Field+" "+c.Grant+" "+c.Action)
				reasons += c.Reason + "\n"
				if c.Reason == "" {
					t.Errorf("change %s %s has no reason", c.Field, c.Grant)
				}
			}
			if !reflect.DeepEqual(actions, tt.actions) {
				t.Errorf("changes = %q, want %q", actions, tt.actions)
			}
			if !strings.Contains(reasons, tt.reason) {
				t.Errorf("reasons %q lack %q", reasons, tt.reason)
			}
			if notes := strings.Join(fa.Notes, "\n"); !strings.Contains(notes, tt.note) {
				t.Errorf("notes %q lack %q", notes, tt.note)
			}
			if err := advisedWithinCurrent(fa); err != nil {
				t.Error(err)
			}
		})
	}
}

func manyNames(kind, fn string, n int) []Use {
	out := make([]Use, n)
	for i := range out {
		out[i] = use(kind, fn, fmt.Sprintf("t%02d", i), 1)
	}
	return out
}

// normal makes empty lists nil so advised grants compare by content.
func normal(g manifest.Grants) manifest.Grants {
	n := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	return manifest.Grants{
		KV:      manifest.ReadWrite{Read: n(g.KV.Read), Write: n(g.KV.Write)},
		Objects: manifest.ReadWrite{Read: n(g.Objects.Read), Write: n(g.Objects.Write)},
		Events:  manifest.EventGrants{Publish: n(g.Events.Publish)},
		Egress:  manifest.EgressGrants{Hosts: n(g.Egress.Hosts)},
		Invoke:  n(g.Invoke), Secrets: n(g.Secrets),
	}
}

// advisedWithinCurrent checks the property advice promises: every advised
// name is covered by a current grant of the same or a wider access.
func advisedWithinCurrent(fa adminapi.FunctionAdvice) error {
	cur, adv := fa.Current, fa.Advised
	within := func(field string, names []string, lists ...[]string) error {
		for _, n := range names {
			ok := false
			for _, l := range lists {
				for _, p := range l {
					if manifest.MatchPattern(p, n) || matchHost(p, n) {
						ok = true
					}
				}
			}
			if !ok {
				return fmt.Errorf("advised %s %q is not within the current grants", field, n)
			}
		}
		return nil
	}
	for _, err := range []error{
		within("kv.read", adv.KV.Read, cur.KV.Read, cur.KV.Write),
		within("kv.write", adv.KV.Write, cur.KV.Write),
		within("objects.read", adv.Objects.Read, cur.Objects.Read, cur.Objects.Write),
		within("objects.write", adv.Objects.Write, cur.Objects.Write),
		within("events.publish", adv.Events.Publish, cur.Events.Publish),
		within("egress.hosts", adv.Egress.Hosts, cur.Egress.Hosts),
		within("invoke", adv.Invoke, cur.Invoke),
		within("secrets", adv.Secrets, cur.Secrets),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func TestAdviseApp(t *testing.T) {
	m := app(map[string]manifest.Grants{
		"b": {KV: manifest.ReadWrite{Write: []string{"x"}}},
		"a": {},
	})
	got := Advise(Input{App: "diary", Version: 3, Manifest: m})
	if got.Observed || !strings.Contains(got.Note, "no observations of diary yet") {
		t.Errorf("observed = %v, note = %q: want no observations said", got.Observed, got.Note)
	}
	if got.Version != 3 || len(got.Functions) != 2 || got.Functions[0].Function != "a" || got.Functions[1].Function != "b" {
		t.Errorf("advice = %+v, want version 3 and functions a, b in order", got)
	}
	got = Advise(Input{App: "diary", Manifest: m, Edges: []Use{ran("b", 1)}})
	if !got.Observed || got.Note != "" {
		t.Errorf("observed = %v, note = %q: want observed, no note", got.Observed, got.Note)
	}
	if got.Functions[1].Invocations != 1 || got.Functions[0].Evidence != adminapi.EvidenceNone {
		t.Errorf("functions = %+v", got.Functions)
	}
	if got := Advise(Input{App: "x"}); got.Functions == nil {
		t.Error("no manifest: functions must be an empty list, not null")
	}
}
