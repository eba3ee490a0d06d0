package draw

import (
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
)

// elem is a parsed element: enough of a DOM to look things up.
type elem struct {
	Name     string
	Attr     map[string]string
	Children []*elem
	Text     string // the text directly inside it
}

// parse checks that out is one well-formed XML element and returns it.
func parse(t testing.TB, out template.HTML) *elem {
	t.Helper()
	root, err := parseErr(string(out))
	if err != nil {
		t.Fatalf("output is not well-formed XML: %v\n%s", err, out)
	}
	return root
}

func parseErr(s string) (*elem, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = true
	var stack []*elem
	var root *elem
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &elem{Name: tok.Name.Local, Attr: map[string]string{}}
			for _, a := range tok.Attr {
				name := a.Name.Local
				if a.Name.Space != "" && a.Name.Space != "xmlns" {
					name = a.Name.Space + ":" + name
				}
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && name == "xmlns") {
					name = "xmlns"
				}
				e.Attr[name] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, e)
			} else if root != nil {
				return nil, fmt.Errorf("more than one root element")
			} else {
				root = e
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tok)
			} else if strings.TrimSpace(string(tok)) != "" {
				return nil, fmt.Errorf("text outside the root element")
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no element")
	}
	return root, nil
}

// walk calls f on e and every element below it, in document order.
func (e *elem) walk(f func(*elem)) {
	f(e)
	for _, c := range e.Children {
		c.walk(f)
	}
}

// all returns the elements below e (e included) having attribute attr.
func (e *elem) all(attr string) []*elem {
	var out []*elem
	e.walk(func(x *elem) {
		if _, ok := x.Attr[attr]; ok {
			out = append(out, x)
		}
	})
	return out
}

// named returns the elements below e (e included) with that tag.
func (e *elem) named(tag string) []*elem {
	var out []*elem
	e.walk(func(x *elem) {
		if x.Name == tag {
			out = append(out, x)
		}
	})
	return out
}

// child returns e's first child with that tag, or nil.
func (e *elem) child(tag string) *elem {
	for _, c := range e.Children {
		if c.Name == tag {
			return c
		}
	}
	return nil
}

func (e *elem) classes() []string { return strings.Fields(e.Attr["class"]) }

func (e *elem) hasClass(c string) bool {
	for _, x := range e.classes() {
		if x == c {
			return true
		}
	}
	return false
}

func (e *elem) float(t testing.TB, attr string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(e.Attr[attr], 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", e.Name, attr, e.Attr[attr], err)
	}
	return v
}

var urlRef = regexp.MustCompile(`url\(#([^)]*)\)`)

// checkSafe checks what every output must be, whatever the input: one
// well-formed element; an <svg> with its accessible name, viewBox and
// size, or a <p class="empty">; nothing a strict CSP would refuse or that
// loads anything (no script, no event or style attribute, no href, no
// foreignObject); ids unique; every url(#id) naming an id of its own.
func checkSafe(t testing.TB, out template.HTML) *elem {
	t.Helper()
	root := parse(t, out)
	switch root.Name {
	case "p":
		if !root.hasClass("empty") || len(root.Children) != 0 {
			t.Errorf("an empty picture is <p class=\"empty\">text</p>, got %s", out)
		}
		return root
	case "svg":
	default:
		t.Fatalf("root element <%s>, want <svg> or <p>", root.Name)
	}
	if root.Attr["xmlns"] != svgNS {
		t.Errorf("xmlns = %q", root.Attr["xmlns"])
	}
	if root.Attr["role"] != "img" {
		t.Errorf("role = %q, want img", root.Attr["role"])
	}
	title := root.child("title")
	if title == nil || title.Attr["id"] == "" || root.Attr["aria-labelledby"] != title.Attr["id"] {
		t.Errorf("aria-labelledby %q does not name the svg's <title>", root.Attr["aria-labelledby"])
	}
	vb := strings.Fields(root.Attr["viewBox"])
	if len(vb) != 4 || vb[2] != root.Attr["width"] || vb[3] != root.Attr["height"] {
		t.Errorf("viewBox %q, width %q, height %q", root.Attr["viewBox"], root.Attr["width"], root.Attr["height"])
	}
	ids := map[string]bool{}
	var refs []string
	root.walk(func(e *elem) {
		switch e.Name {
		case "script", "foreignObject", "image", "use", "a", "iframe", "style":
			t.Errorf("element <%s> in output", e.Name)
		}
		for k, v := range e.Attr {
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "on") || lk == "style" || strings.HasSuffix(lk, "href") || lk == "src" {
				t.Errorf("attribute %s=%q in output", k, v)
			}
			for _, m := range urlRef.FindAllStringSubmatch(v, -1) {
				refs = append(refs, m[1])
			}
			if !strings.HasPrefix(lk, "data-") && strings.Contains(v, "url(") && !urlRef.MatchString(v) {
				t.Errorf("attribute %s=%q refers to something outside the picture", k, v)
			}
		}
		if id, ok := e.Attr["id"]; ok {
			if ids[id] {
				t.Errorf("id %q defined twice", id)
			}
			ids[id] = true
		}
	})
	for _, r := range refs {
		if !ids[r] {
			t.Errorf("url(#%s) names no element", r)
		}
	}
	return root
}

// byAttr indexes the elements having attr by its value.
func byAttr(root *elem, attr string) map[string]*elem {
	m := map[string]*elem{}
	for _, e := range root.all(attr) {
		m[e.Attr[attr]] = e
	}
	return m
}

func edge(fromType, from, toType, to, kind string, declared, observed bool, count int64) adminapi.GraphEdge {
	return adminapi.GraphEdge{FromType: fromType, From: from, ToType: toType, To: to, Kind: kind,
		Declared: declared, Observed: observed, Count: count}
}

// photos is a small app: a route and a topic start functions, one
// invokes another, which writes a table and publishes to a topic.
func photos() adminapi.Graph {
	return adminapi.Graph{App: "photos", Edges: []adminapi.GraphEdge{
		edge("route", "POST /upload", "function", "upload", "http", true, true, 40),
		edge("function", "upload", "function", "thumbnail", "invoke", true, true, 38),
		edge("function", "thumbnail", "table", "photos", "kv", true, true, 12),
		edge("function", "thumbnail", "topic", "thumbs.done", "publish", false, true, 3),
		edge("topic", "nightly", "function", "cleanup", "event", true, false, 0),
		edge("function", "cleanup", "objects", "photos/*", "objects", true, false, 0),
		{FromType: "function", From: "upload", ToType: "host", To: "evil.example", Kind: "fetch",
			Observed: true, Refused: true, RefusedCount: 2, Flags: []string{adminapi.FlagOutside}},
	}}
}

func TestCallGraph(t *testing.T) {
	root := checkSafe(t, CallGraph(photos()))
	nodes := byAttr(root, "data-node")
	want := []string{"route:POST /upload", "function:upload", "function:thumbnail", "table:photos",
		"topic:thumbs.done", "topic:nightly", "function:cleanup", "objects:photos/*", "host:evil.example"}
	if len(nodes) != len(want) {
		t.Errorf("%d nodes, want %d", len(nodes), len(want))
	}
	for _, k := range want {
		n := nodes[k]
		if n == nil {
			t.Errorf("no node %s", k)
			continue
		}
		typ, name, _ := strings.Cut(k, ":")
		if !n.hasClass("node") || !n.hasClass(typ) {
			t.Errorf("node %s: class %q", k, n.Attr["class"])
		}
		if n.child("title") == nil || !strings.Contains(n.child("title").Text, name) {
			t.Errorf("node %s: no tooltip with its name", k)
		}
		if n.child("rect") == nil || n.child("text") == nil || n.child("text").Text != name {
			t.Errorf("node %s: want a rect and the label %q", k, name)
		}
	}

	edges := root.all("data-from")
	if len(edges) != 7 {
		t.Fatalf("%d edges, want 7", len(edges))
	}
	for _, e := range edges {
		if e.child("path") == nil || !strings.HasPrefix(e.child("path").Attr["marker-end"], "url(#cg-") {
			t.Errorf("edge %s → %s: no path with an arrow", e.Attr["data-from"], e.Attr["data-to"])
		}
		if nodes[e.Attr["data-from"]] == nil || nodes[e.Attr["data-to"]] == nil {
			t.Errorf("edge %s → %s: an end is not a node", e.Attr["data-from"], e.Attr["data-to"])
		}
	}

	// Columns: trigger, caller, callee, resources.
	x := func(k string) float64 { return nodes[k].child("rect").float(t, "x") }
	for _, c := range [][2]string{
		{"route:POST /upload", "function:upload"},
		{"topic:nightly", "function:cleanup"},
		{"function:upload", "function:thumbnail"},
		{"function:thumbnail", "table:photos"},
		{"function:thumbnail", "topic:thumbs.done"},
		{"function:cleanup", "objects:photos/*"},
	} {
		if x(c[0]) >= x(c[1]) {
			t.Errorf("%s (x %v) is not left of %s (x %v)", c[0], x(c[0]), c[1], x(c[1]))
		}
	}
	if x("function:upload") != x("function:cleanup") {
		t.Errorf("functions nobody invokes are in different columns")
	}
	if x("table:photos") != x("host:evil.example") || x("route:POST /upload") != x("topic:nightly") {
		t.Errorf("resources or triggers are not in one column")
	}
	// No two nodes overlap.
	type pos struct{ x, y float64 }
	seen := map[pos]string{}
	for k, n := range nodes {
		p := pos{n.child("rect").float(t, "x"), n.child("rect").float(t, "y")}
		if o, ok := seen[p]; ok {
			t.Errorf("%s and %s at the same place", k, o)
		}
		seen[p] = k
	}
	if len(root.named("marker")) != 2 || root.child("defs") == nil {
		t.Errorf("want two markers in <defs>")
	}
	if len(root.all("class")) == 0 || len(byAttr(root, "class")) == 0 {
		t.Fatal("no classes")
	}
	var legend *elem
	root.walk(func(e *elem) {
		if e.hasClass("legend") {
			legend = e
		}
	})
	if legend == nil || len(legend.all("data-from")) != 0 || len(legend.named("text")) != 4 {
		t.Errorf("want a legend of four entries that are not edges")
	}
}

// TestCallGraphLongEdges: an edge that skips a column runs in the gap
// between rows, never through the box of a node in between.
func TestCallGraphLongEdges(t *testing.T) {
	root := checkSafe(t, CallGraph(photos()))
	nodes := byAttr(root, "data-node")
	for _, e := range root.all("data-from") {
		d := e.child("path").Attr["d"]
		from := nodes[e.Attr["data-from"]].child("rect").float(t, "x")
		to := nodes[e.Attr["data-to"]].child("rect").float(t, "x")
		long := math.Abs(to-from) > cgPitchX
		if strings.Contains(d, "H") != long {
			t.Errorf("%s → %s (x %v → %v): path %q", e.Attr["data-from"], e.Attr["data-to"], from, to, d)
		}
		if !long {
			continue
		}
		// The horizontal run's y is in no box.
		_, after, _ := strings.Cut(d, "H")
		_, after, _ = strings.Cut(after, "C")
		ys, _, _ := strings.Cut(after, " ")
		_, ys, _ = strings.Cut(ys, ",")
		y, err := strconv.ParseFloat(ys, 64)
		if err != nil {
			t.Fatalf("path %q: %v", d, err)
		}
		for k, n := range nodes {
			r := n.child("rect")
			if top := r.float(t, "y"); y > top && y < top+cgNodeH {
				t.Errorf("%s → %s runs through the row of %s", e.Attr["data-from"], e.Attr["data-to"], k)
			}
		}
	}
}

func TestTimeTicks(t *testing.T) {
	at := func(h, m, s int) time.Time { return time.Date(2026, 3, 1, h, m, s, 0, time.UTC) }
	for _, tc := range []struct {
		from, to time.Time
		want     string
	}{
		{at(14, 0, 0), at(15, 0, 0), "14:00 14:15 14:30 14:45 15:00"},
		{at(14, 3, 0), at(14, 58, 0), "14:15 14:30 14:45"},
		{at(14, 0, 5), at(14, 0, 50), "14:00:10 14:00:20 14:00:30 14:00:40 14:00:50"},
		{at(0, 0, 0), at(0, 0, 0).Add(30 * time.Hour), "Mar 1 00:00 Mar 1 06:00 Mar 1 12:00 Mar 1 18:00 Mar 2 00:00 Mar 2 06:00"},
		{at(0, 0, 0), at(0, 0, 0), "00:00:00"},
	} {
		ts, layout := timeTicks(tc.from, tc.to)
		var got []string
		for _, x := range ts {
			got = append(got, x.Format(layout))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("ticks %v – %v: %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
	// A span longer than any step still gets five ticks.
	if ts, _ := timeTicks(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)); len(ts) != 5 {
		t.Errorf("%d ticks for a huge span", len(ts))
	}
}

func TestCallGraphEdgeClasses(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		declared, observed, refused bool
		refusedCount                int64
		flags                       []string
		want                        string
		title                       string
	}{
		{"declared and used", true, true, false, 0, nil, "edge declared observed", "thumbnail → table photos (kv): declared, observed 12 times, refused 0"},
		{"used, not declared", false, true, false, 0, nil, "edge undeclared observed", "not declared, observed 12 times"},
		{"never used", true, false, false, 0, []string{adminapi.FlagNarrow}, "edge declared unobserved narrow", "declared, never observed, refused 0; grant to narrow"},
		{"refused", false, true, true, 3, []string{adminapi.FlagOutside}, "edge undeclared observed refused outside", "refused 3; attempt outside the grants"},
		{"refused count only", true, true, false, 1, nil, "edge declared observed refused", "refused 1"},
		{"unknown flag", true, true, false, 0, []string{"x y\" onload=\"z"}, "edge declared observed", `x y" onload="z`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := edge("function", "thumbnail", "table", "photos", "kv", tc.declared, tc.observed, 12)
			e.Refused, e.RefusedCount, e.Flags = tc.refused, tc.refusedCount, tc.flags
			root := checkSafe(t, CallGraph(adminapi.Graph{App: "a", Edges: []adminapi.GraphEdge{e}}))
			edges := root.all("data-from")
			if len(edges) != 1 {
				t.Fatalf("%d edges", len(edges))
			}
			g := edges[0]
			if g.Attr["class"] != tc.want {
				t.Errorf("class %q, want %q", g.Attr["class"], tc.want)
			}
			if g.Attr["data-from"] != "function:thumbnail" || g.Attr["data-to"] != "table:photos" {
				t.Errorf("data-from %q data-to %q", g.Attr["data-from"], g.Attr["data-to"])
			}
			if title := g.child("title").Text; !strings.Contains(title, tc.title) {
				t.Errorf("title %q does not say %q", title, tc.title)
			}
			p := g.child("path")
			refused := tc.refused || tc.refusedCount > 0
			if strings.Contains(p.Attr["marker-end"], "refused") != refused {
				t.Errorf("marker %q for refused=%v", p.Attr["marker-end"], refused)
			}
			if _, dashed := p.Attr["stroke-dasharray"]; dashed == tc.observed {
				t.Errorf("dashed=%v for observed=%v", dashed, tc.observed)
			}
		})
	}
}

func TestCallGraphEmpty(t *testing.T) {
	for _, g := range []adminapi.Graph{{}, {App: "photos"}, {App: "<b>", Edges: []adminapi.GraphEdge{}}} {
		out := CallGraph(g)
		root := checkSafe(t, out)
		if root.Name != "p" || !strings.Contains(root.Text, "No edges") || !strings.Contains(root.Text, g.App) || strings.Contains(root.Text, "  ") {
			t.Errorf("empty graph %q: %s", g.App, out)
		}
	}
}

// TestCallGraphLayers checks the longest-path layering: a function goes
// one column after its furthest caller, and cycles end.
func TestCallGraphLayers(t *testing.T) {
	fn := func(from, to string) adminapi.GraphEdge {
		return edge("function", from, "function", to, "invoke", true, true, 1)
	}
	for _, tc := range []struct {
		name  string
		edges []adminapi.GraphEdge
		// cols gives each function's column counted from the first
		// function column.
		cols map[string]int
	}{
		{"chain", []adminapi.GraphEdge{fn("a", "b"), fn("b", "c"), fn("c", "d")},
			map[string]int{"a": 0, "b": 1, "c": 2, "d": 3}},
		{"longest path wins", []adminapi.GraphEdge{fn("a", "b"), fn("b", "c"), fn("a", "c")},
			map[string]int{"a": 0, "b": 1, "c": 2}},
		{"cycle", []adminapi.GraphEdge{fn("a", "b"), fn("b", "a")},
			map[string]int{"a": 0, "b": 1}},
		{"cycle of three from a root", []adminapi.GraphEdge{fn("r", "a"), fn("a", "b"), fn("b", "c"), fn("c", "a")},
			map[string]int{"r": 0, "a": 1, "b": 2, "c": 3}},
		{"self", []adminapi.GraphEdge{fn("a", "a"), fn("a", "b")},
			map[string]int{"a": 0, "b": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A route on every function pins the trigger column, so
			// columns count from a known x.
			var edges []adminapi.GraphEdge
			for f := range tc.cols {
				edges = append(edges, edge("route", "GET /"+f, "function", f, "http", true, true, 1))
			}
			edges = append(edges, tc.edges...)
			root := checkSafe(t, CallGraph(adminapi.Graph{App: "a", Edges: edges}))
			nodes := byAttr(root, "data-node")
			x0 := nodes["route:GET /a"].child("rect").float(t, "x")
			for f, col := range tc.cols {
				x := nodes["function:"+f].child("rect").float(t, "x")
				if got := int(math.Round((x - x0) / cgPitchX)); got != col+1 {
					t.Errorf("%s in column %d, want %d", f, got-1, col)
				}
			}
			if n := len(root.all("data-from")); n != len(edges) {
				t.Errorf("%d edges drawn, want %d", n, len(edges))
			}
		})
	}
}

// hostile are names that would break out of a text node or an attribute,
// or hold what XML cannot carry at all.
var hostile = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(1)>`,
	`' onmouseover='alert(1)`,
	`]]><x/>&amp;&lt;`,
	"nul\x00bell\x07 and \xff\xfe bad UTF-8",
	"url(https://evil.example/x)",
}

func TestEscaping(t *testing.T) {
	for _, s := range hostile {
		t.Run(s, func(t *testing.T) {
			outs := map[string]template.HTML{
				"callgraph": CallGraph(adminapi.Graph{App: s, Edges: []adminapi.GraphEdge{
					edge(s, s, "function", s, s, true, true, 1),
					{FromType: "function", From: s, ToType: s, To: "t", Kind: "kv", Flags: []string{s}},
				}}),
				"bars":      Bars(s, []Bar{{Label: s, Value: 1, Title: s}, {Label: "b", Value: 2}}, s),
				"lines":     Lines(s, []Line{{Name: s, Class: s, Points: []Point{{time.Unix(60, 0), 1}, {time.Unix(120, 0), 2}}}}, s),
				"waterfall": Waterfall(adminapi.Trace{TraceID: s, Outcome: s, Children: []*adminapi.TraceNode{{App: s, Function: s, Trigger: s, Outcome: s, Error: s, SpanID: s, Start: time.Unix(1, 0), DurationMS: 3}}}),
				"empty":     CallGraph(adminapi.Graph{App: s}),
			}
			want := clean(s)
			for name, out := range outs {
				raw := strings.ToLower(string(out))
				for _, bad := range []string{"<script", "<img", "<x/>"} {
					if strings.Contains(raw, bad) {
						t.Errorf("%s: raw output holds %q", name, bad)
					}
				}
				root := checkSafe(t, out)
				// The text survives, escaped, to be read back.
				found := false
				root.walk(func(e *elem) {
					if strings.Contains(e.Text, want) {
						found = true
					}
					for _, v := range e.Attr {
						if strings.Contains(v, want) {
							found = true
						}
					}
				})
				if !found {
					t.Errorf("%s: %q is nowhere in the output", name, want)
				}
				// Data never adds a class: each is a word of [a-z0-9_-].
				root.walk(func(e *elem) {
					for _, c := range e.classes() {
						if !regexp.MustCompile(`^[a-z0-9_-]+$`).MatchString(c) {
							t.Errorf("%s: class %q from data", name, c)
						}
					}
				})
			}
		})
	}
}

// TestEscapedLabels checks the exact escaped forms a page will hold.
func TestEscapedLabels(t *testing.T) {
	g := adminapi.Graph{App: "a", Edges: []adminapi.GraphEdge{
		edge("route", `"><img src=x>`, "function", "<script>alert(1)</script>", "http", true, true, 1),
	}}
	for name, out := range map[string]string{
		"callgraph": string(CallGraph(g)),
		"bars":      string(Bars("t", []Bar{{Label: "<script>alert(1)</script>", Value: 1}, {Label: `"><img src=x>`, Value: 2}}, "")),
	} {
		for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x&gt;"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q in\n%s", name, want, out)
			}
		}
		if strings.Contains(out, "<script") || strings.Contains(out, "<img") {
			t.Errorf("%s: unescaped markup in\n%s", name, out)
		}
	}
}

func TestDeterministic(t *testing.T) {
	g := photos()
	a, b := CallGraph(g), CallGraph(g)
	if a != b {
		t.Fatal("the same graph drawn twice differs")
	}
	// Nor does the order of the edges matter.
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		s := adminapi.Graph{App: g.App, Edges: append([]adminapi.GraphEdge(nil), g.Edges...)}
		r.Shuffle(len(s.Edges), func(i, j int) { s.Edges[i], s.Edges[j] = s.Edges[j], s.Edges[i] })
		if got := CallGraph(s); got != a {
			t.Fatalf("edges in another order draw another picture:\n%s\n%s", a, got)
		}
	}
	for name, draw := range map[string]func() template.HTML{
		"waterfall": func() template.HTML { return Waterfall(trace()) },
		"lines":     func() template.HTML { return Lines("x", series(), "") },
		"bars":      func() template.HTML { return Bars("x", []Bar{{"a", 1, ""}, {"b", 2, ""}}, "") },
	} {
		if first, second := draw(), draw(); first != second {
			t.Errorf("%s drawn twice differs", name)
		}
	}
}

// TestIDs: two pictures on one page define distinct ids.
func TestIDs(t *testing.T) {
	g2 := photos()
	g2.App = "other"
	page := []template.HTML{
		CallGraph(photos()), CallGraph(g2),
		Bars("GB-s", []Bar{{"a", 1, ""}}, ""), Bars("Invocations", []Bar{{"a", 1, ""}}, ""),
		Lines("a", series(), ""), Lines("b", series(), ""),
		Waterfall(trace()),
	}
	ids := map[string]int{}
	for i, out := range page {
		checkSafe(t, out).walk(func(e *elem) {
			if id, ok := e.Attr["id"]; ok {
				if j, dup := ids[id]; dup {
					t.Errorf("id %q in pictures %d and %d", id, j, i)
				}
				ids[id] = i
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("abcdefghij", 10)
	root := checkSafe(t, CallGraph(adminapi.Graph{App: "a", Edges: []adminapi.GraphEdge{
		edge("route", "GET /"+long, "function", "ünïcødé-"+long, "http", true, true, 1),
	}}))
	for k, n := range byAttr(root, "data-node") {
		label := n.child("text").Text
		if !strings.HasSuffix(label, "…") || len([]rune(label)) != cgLabel {
			t.Errorf("%s: label %q, want %d characters ending in …", k, label, cgLabel)
		}
		_, name, _ := strings.Cut(k, ":")
		if !strings.Contains(n.child("title").Text, name) {
			t.Errorf("%s: the tooltip lost the full name", k)
		}
	}
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"}, {"abcd", 3, "ab…"}, {"", 3, ""}, {"äöüß", 2, "ä…"}, {"abc", 0, "…"},
	} {
		if got := truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestCompact(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {7, "7"}, {950, "950"}, {0.25, "0.25"}, {1.5, "1.5"}, {0.001234, "0.0012"},
		{12.34, "12.3"}, {999.96, "1k"}, {1000, "1k"}, {1234, "1.2k"}, {34_000, "34k"},
		{123_456, "123k"}, {999_960, "1M"}, {3_400_000, "3.4M"}, {2.5e9, "2.5G"}, {-1234, "-1.2k"},
		{7e15, "7P"}, {math.NaN(), "n/a"}, {math.Inf(1), "n/a"},
	} {
		if got := compact(tc.v); got != tc.want {
			t.Errorf("compact(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestNum(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {-0.04, "0"}, {12, "12"}, {12.34, "12.3"}, {12.36, "12.4"}, {-0.5, "-0.5"},
		{-12.5, "-12.5"}, {0.05, "0.1"}, {1e20, "100000000000000000000"}, {math.NaN(), "0"}, {math.Inf(-1), "0"},
	} {
		if got := num(tc.v); got != tc.want {
			t.Errorf("num(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestToken(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"function", "function"}, {"Function Error", "function-error"}, {`" onload="x`, "onload-x"},
		{"", "fb"}, {"  ", "fb"}, {"ünï", "n"}, {"a\x00b", "a-b"}, {strings.Repeat("x", 50), strings.Repeat("x", 32)},
	} {
		if got := token(tc.in, "fb"); got != tc.want {
			t.Errorf("token(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBars(t *testing.T) {
	bars := []Bar{
		{Label: "thumbnail", Value: 3_400_000},
		{Label: "upload", Value: 1_700_000, Title: "upload: half"},
		{Label: "tiny", Value: 0.25},
		{Label: "zero", Value: 0},
		{Label: "negative", Value: -5},
		{Label: "nan", Value: math.NaN()},
	}
	root := checkSafe(t, Bars("Invocations", bars, "calls"))
	rows := root.all("data-label")
	if len(rows) != len(bars) {
		t.Fatalf("%d rows, want %d", len(rows), len(bars))
	}
	width := map[string]float64{}
	for i, r := range rows {
		if r.Attr["data-label"] != bars[i].Label || r.Attr["class"] != "bar" {
			t.Errorf("row %d: %v", i, r.Attr)
		}
		width[bars[i].Label] = r.child("rect").float(t, "width")
		var value string
		for _, x := range r.named("text") {
			if x.hasClass("value") {
				value = x.Text
			}
		}
		if want := compact(bars[i].Value) + " calls"; value != want {
			t.Errorf("row %s: value %q, want %q", bars[i].Label, value, want)
		}
	}
	if width["thumbnail"] != barMaxW || width["upload"] != barMaxW/2 {
		t.Errorf("widths %v: the largest bar is full, the half one half", width)
	}
	if width["tiny"] != 1 || width["zero"] != 0 || width["negative"] != 0 || width["nan"] != 0 {
		t.Errorf("widths %v", width)
	}
	if got := rows[1].child("title").Text; got != "upload: half" {
		t.Errorf("title %q", got)
	}
	if got := rows[0].child("title").Text; got != "thumbnail: 3.4M calls" {
		t.Errorf("default title %q", got)
	}

	// All zero: no bar, no division by zero.
	root = checkSafe(t, Bars("x", []Bar{{"a", 0, ""}, {"b", 0, ""}}, ""))
	for _, r := range root.named("rect") {
		if r.Attr["width"] != "0" {
			t.Errorf("zero bar of width %s", r.Attr["width"])
		}
	}
	if out := Bars("GB-seconds", nil, "GB-s"); checkSafe(t, out).Name != "p" || !strings.Contains(string(out), "GB-seconds") {
		t.Errorf("no bars: %s", out)
	}
}

// series is an hour of invocations and errors per minute.
func series() []Line {
	t0 := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	var inv, errs []Point
	for i := range 60 {
		inv = append(inv, Point{t0.Add(time.Duration(i) * time.Minute), float64(100 + i)})
		errs = append(errs, Point{t0.Add(time.Duration(i) * time.Minute), float64(i % 3)})
	}
	return []Line{{Name: "invocations", Class: "invocations", Points: inv}, {Name: "errors", Class: "errors", Points: errs}}
}

func TestLines(t *testing.T) {
	root := checkSafe(t, Lines("Last hour", series(), "/min"))
	pl := root.named("polyline")
	if len(pl) != 2 {
		t.Fatalf("%d polylines", len(pl))
	}
	for i, class := range []string{"invocations", "errors"} {
		if pl[i].Attr["class"] != "line "+class {
			t.Errorf("polyline %d class %q", i, pl[i].Attr["class"])
		}
		if n := len(strings.Fields(pl[i].Attr["points"])); n != 60 {
			t.Errorf("%s: %d points, want 60", class, n)
		}
	}
	var ticks []string
	for _, x := range root.named("text") {
		if x.hasClass("tick") {
			ticks = append(ticks, x.Text)
		}
	}
	joined := strings.Join(ticks, " ")
	for _, want := range []string{"14:00", "14:15", "14:30", "14:45", "0", "100", "200"} {
		if !strings.Contains(" "+joined+" ", " "+want+" ") {
			t.Errorf("ticks %q lack %q", joined, want)
		}
	}
	// x grows with time, y falls with value.
	pts := strings.Fields(pl[0].Attr["points"])
	var px, py []float64
	for _, p := range pts {
		xs, ys, _ := strings.Cut(p, ",")
		x, _ := strconv.ParseFloat(xs, 64)
		y, _ := strconv.ParseFloat(ys, 64)
		px, py = append(px, x), append(py, y)
	}
	for i := 1; i < len(px); i++ {
		if px[i] <= px[i-1] || py[i] > py[i-1] {
			t.Fatalf("point %d (%v,%v) after (%v,%v)", i, px[i], py[i], px[i-1], py[i-1])
		}
	}

	for _, tc := range []struct {
		name  string
		lines []Line
		svg   bool
		check func(*testing.T, *elem)
	}{
		{"none", nil, false, nil},
		{"no points", []Line{{Name: "a"}}, false, nil},
		{"only unusable points", []Line{{Name: "a", Points: []Point{{time.Time{}, 1}, {time.Unix(5, 0), math.NaN()}}}}, false, nil},
		{"one point", []Line{{Name: "a", Points: []Point{{time.Unix(60, 0), 3}}}}, true, func(t *testing.T, r *elem) {
			if len(r.named("circle")) != 1 {
				t.Error("one point draws no dot")
			}
		}},
		{"unsorted", []Line{{Name: "a", Points: []Point{{time.Unix(180, 0), 1}, {time.Unix(60, 0), 2}, {time.Unix(120, 0), 3}}}}, true, func(t *testing.T, r *elem) {
			pts := strings.Fields(r.named("polyline")[0].Attr["points"])
			if len(pts) != 3 || !strings.HasPrefix(pts[0], num(lnLeft)+",") {
				t.Errorf("points %v do not start at the earliest time", pts)
			}
		}},
		{"all zero, no class", []Line{{Name: "a", Points: []Point{{time.Unix(60, 0), 0}, {time.Unix(120, 0), 0}}}}, true, func(t *testing.T, r *elem) {
			if c := r.named("polyline")[0].Attr["class"]; c != "line line1" {
				t.Errorf("class %q", c)
			}
		}},
		{"negative", []Line{{Name: "a", Points: []Point{{time.Unix(60, 0), -30}, {time.Unix(120, 0), 10}}}}, true, nil},
		{"huge", []Line{{Name: "a", Points: []Point{{time.Unix(0, 1), math.MaxFloat64}, {time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), -math.MaxFloat64}}}}, true, nil},
		{"days", []Line{{Name: "a", Points: []Point{{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 1}, {time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC), 2}}}}, true, func(t *testing.T, r *elem) {
			if !strings.Contains(fmt.Sprint(texts(r)), "Mar 4") {
				t.Errorf("a week long axis without dates: %v", texts(r))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkSafe(t, Lines("t", tc.lines, "u"))
			if (r.Name == "svg") != tc.svg {
				t.Fatalf("got <%s>", r.Name)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func texts(r *elem) []string {
	var out []string
	for _, x := range r.named("text") {
		out = append(out, x.Text)
	}
	return out
}

// trace is a request that invoked two functions, one of which failed and
// caused a retry of its own.
func trace() adminapi.Trace {
	t0 := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	return adminapi.Trace{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Spans: 4, Outcome: "error", DurationMS: 100,
		Children: []*adminapi.TraceNode{{
			App: "photos", Function: "upload", Trigger: "http", Outcome: "ok", Status: 200, Start: at(0), DurationMS: 100, SpanID: "a1",
			Children: []*adminapi.TraceNode{
				{App: "photos", Function: "thumbnail", Trigger: "invoke", Outcome: "function error", Error: "boom", Start: at(10), DurationMS: 12.3, SpanID: "b2",
					Children: []*adminapi.TraceNode{{App: "photos", Function: "notify", Trigger: "event", Outcome: "timeout", Start: at(30), DurationMS: 50, SpanID: "c3", Attempt: 2, Retries: 1}}},
				{App: "photos", Function: "index", Trigger: "invoke", Outcome: "ok", Start: at(50), DurationMS: 0.42, SpanID: "d4"},
			},
		}}}
}

func TestWaterfall(t *testing.T) {
	root := checkSafe(t, Waterfall(trace()))
	rows := root.all("data-span")
	var order []string
	for _, r := range rows {
		order = append(order, r.Attr["data-span"])
	}
	if got := strings.Join(order, " "); got != "a1 b2 c3 d4" {
		t.Fatalf("rows %q, want depth first a1 b2 c3 d4", got)
	}
	for i, want := range []string{"span ok", "span error function-error", "span error timeout", "span ok"} {
		if c := rows[i].Attr["class"]; c != want {
			t.Errorf("row %s: class %q, want %q", order[i], c, want)
		}
	}
	label := func(r *elem, class string) *elem {
		for _, x := range r.named("text") {
			if x.hasClass(class) {
				return x
			}
		}
		t.Fatalf("no text.%s", class)
		return nil
	}
	if got := label(rows[1], "label").Text + " " + label(rows[1], "value").Text; got != "photos/thumbnail (invoke) 12.3 ms function error" {
		t.Errorf("row text %q", got)
	}
	if got := label(rows[3], "value").Text; got != "0.42 ms ok" {
		t.Errorf("row text %q", got)
	}
	if tip := rows[2].child("title").Text; !strings.Contains(tip, "attempt 2") {
		t.Errorf("tooltip %q lacks the attempt", tip)
	}
	if tip := rows[1].child("title").Text; !strings.Contains(tip, "boom") {
		t.Errorf("tooltip %q lacks the error", tip)
	}
	// Indented by depth; bars placed by start and sized by duration.
	lx := func(i int) float64 { return label(rows[i], "label").float(t, "x") }
	if !(lx(0) < lx(1) && lx(1) < lx(2) && lx(3) == lx(1)) {
		t.Errorf("indents %v %v %v %v", lx(0), lx(1), lx(2), lx(3))
	}
	bar := func(i int) (x, w float64) {
		r := rows[i].child("rect")
		return r.float(t, "x"), r.float(t, "width")
	}
	x0, w0 := bar(0)
	x1, w1 := bar(1)
	x2, _ := bar(2)
	if w0 != wfBarW || math.Abs(w1-wfBarW*0.123) > 0.1 || math.Abs(x1-x0-wfBarW*0.1) > 0.1 || math.Abs(x2-x0-wfBarW*0.3) > 0.1 {
		t.Errorf("bars: x %v %v %v, widths %v %v", x0, x1, x2, w0, w1)
	}
	if _, w3 := bar(3); math.Abs(w3-wfBarW*0.0042) > 0.1 {
		t.Errorf("a 0.42 ms span's bar is %v wide", w3)
	}
	// An instant still shows.
	tr := trace()
	tr.Children[0].Children[1].DurationMS = 0
	rows = checkSafe(t, Waterfall(tr)).all("data-span")
	if w := rows[3].child("rect").float(t, "width"); w != 1 {
		t.Errorf("an instant's bar is %v wide, want 1", w)
	}
}

func TestWaterfallOdd(t *testing.T) {
	cyc := &adminapi.TraceNode{App: "a", Function: "f", Outcome: "ok", SpanID: "s"}
	cyc.Children = []*adminapi.TraceNode{cyc, nil}
	deep := &adminapi.TraceNode{SpanID: "0", Outcome: "ok"}
	for i, n := 1, deep; i < 5000; i++ {
		c := &adminapi.TraceNode{SpanID: strconv.Itoa(i), Outcome: "ok", Start: time.Unix(0, int64(i)), DurationMS: 1}
		n.Children = []*adminapi.TraceNode{c}
		n = c
	}
	for _, tc := range []struct {
		name string
		tr   adminapi.Trace
		rows int
	}{
		{"empty", adminapi.Trace{TraceID: "x"}, 0},
		{"nil children", adminapi.Trace{TraceID: "x", Children: []*adminapi.TraceNode{nil}}, 0},
		{"cycle", adminapi.Trace{Children: []*adminapi.TraceNode{cyc, cyc}}, 1},
		{"zero times and durations", adminapi.Trace{Children: []*adminapi.TraceNode{{SpanID: "a"}, {SpanID: "b", DurationMS: math.NaN()}}}, 2},
		{"odd numbers", adminapi.Trace{Children: []*adminapi.TraceNode{
			{SpanID: "a", DurationMS: math.Inf(1), Start: time.Unix(0, 0)},
			{SpanID: "b", DurationMS: -5, Start: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
			{SpanID: "c", DurationMS: math.MaxFloat64, Start: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		}}, 3},
		{"deep", adminapi.Trace{Children: []*adminapi.TraceNode{deep}}, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := checkSafe(t, Waterfall(tc.tr))
			if got := len(root.all("data-span")); got != tc.rows {
				t.Errorf("%d rows, want %d", got, tc.rows)
			}
			if tc.rows == 0 && root.Name != "p" {
				t.Errorf("no rows but <%s>", root.Name)
			}
		})
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"}, {"tab\tnl\n", "tab\tnl\n"}, {"a\x00b", "a\ufffdb"}, {"\xff", "\ufffd"},
		{"kept \ufffd", "kept \ufffd"}, {"\ufffe", "\ufffd"}, {"😀", "😀"},
	} {
		if got := clean(tc.in); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// graph1000 is 1,000 functions, each with a route and a table, and a
// chain of invocations through every tenth.
func graph1000() adminapi.Graph {
	g := adminapi.Graph{App: "big"}
	for i := range 1000 {
		f := fmt.Sprintf("fn-%04d", i)
		g.Edges = append(g.Edges,
			edge("route", "GET /"+f, "function", f, "http", true, true, int64(i)),
			edge("function", f, "table", fmt.Sprintf("t-%04d", i), "kv", true, i%2 == 0, int64(i)))
		if i%10 == 0 && i > 0 {
			g.Edges = append(g.Edges, edge("function", fmt.Sprintf("fn-%04d", i-10), "function", f, "invoke", true, true, 1))
		}
	}
	return g
}

func TestCallGraph1000(t *testing.T) {
	g := graph1000()
	root := checkSafe(t, CallGraph(g))
	if n := len(root.all("data-node")); n != 3000 {
		t.Errorf("%d nodes, want 3000", n)
	}
	if n := len(root.all("data-from")); n != len(g.Edges) {
		t.Errorf("%d edges, want %d", n, len(g.Edges))
	}
}

func BenchmarkCallGraph1000(b *testing.B) {
	g := graph1000()
	b.ReportAllocs()
	for b.Loop() {
		_ = CallGraph(g)
	}
}

func FuzzCallGraph(f *testing.F) {
	f.Add("photos", "route", "GET /x", "function", "f", "http", uint8(3))
	f.Add("<a>", "function", "f", "function", "f", "invoke", uint8(0))
	f.Add("", "", "", "", "", "", uint8(255))
	f.Add("\xff\x00", `"><img src=x>`, "<script>", "function", "a", "", uint8(7))
	f.Fuzz(func(t *testing.T, app, fromType, from, toType, to, kind string, bits uint8) {
		// A few edges from the strings, so cycles, self edges and
		// duplicates all occur.
		e := adminapi.GraphEdge{From: from, To: to, FromType: fromType, ToType: toType, Kind: kind,
			Declared: bits&1 != 0, Observed: bits&2 != 0, Refused: bits&4 != 0, Count: int64(bits), Flags: []string{kind}}
		g := adminapi.Graph{App: app, Edges: []adminapi.GraphEdge{e}}
		if bits&8 != 0 {
			g.Edges = append(g.Edges, adminapi.GraphEdge{From: to, To: from, FromType: toType, ToType: fromType})
		}
		if bits&16 != 0 {
			g.Edges = append(g.Edges, adminapi.GraphEdge{From: to, To: to, FromType: "function", ToType: "function"}, e)
		}
		if bits&32 != 0 {
			g.Edges = nil
		}
		out := CallGraph(g)
		root, err := parseErr(string(out))
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, out)
		}
		if root.Name == "svg" && len(root.all("data-from")) != len(g.Edges) {
			t.Errorf("%d edges drawn of %d", len(root.all("data-from")), len(g.Edges))
		}
		if strings.Contains(strings.ToLower(string(out)), "<script") {
			t.Error("a script element")
		}
		// The other pictures take the same strings.
		for _, o := range []template.HTML{
			Bars(app, []Bar{{from, float64(bits), to}}, kind),
			Lines(app, []Line{{Name: from, Class: to, Points: []Point{{time.Unix(int64(bits), 0), float64(bits)}}}}, kind),
			Waterfall(adminapi.Trace{TraceID: app, Children: []*adminapi.TraceNode{{App: from, Function: to, Outcome: kind, SpanID: fromType}}}),
		} {
			if _, err := parseErr(string(o)); err != nil {
				t.Fatalf("not XML: %v\n%s", err, o)
			}
		}
	})
}
