package draw

import (
	"cmp"
	"html/template"
	"slices"
	"strconv"
	"strings"

	"github.com/aegis-platform/aegis/adminapi"
)

// The geometry of a call graph, in CSS pixels.
const (
	cgMargin  = 16.0
	cgLegendH = 34.0  // the legend's band above the graph
	cgNodeW   = 180.0 // a node's box
	cgNodeH   = 26.0
	cgColGap  = 90.0 // room between columns for the edges' curves
	cgRowGap  = 12.0
	cgPitchX  = cgNodeW + cgColGap
	cgPitchY  = cgNodeH + cgRowGap
	// cgLabel is how many characters of a name fit a box.
	cgLabel = int((cgNodeW - 12) / charW)
)

// cgNode is one end of edges: a route, a function, a table…
type cgNode struct {
	typ, name string
	key       string // "TYPE:NAME", its data-node
	fn        bool   // a function: placed by layer
	target    bool   // some edge ends here: a resource, placed on the right
	col       int
	y         float64
	placed    bool
	succs     []int // functions it invokes (function → function edges)
	invoked   bool  // another function invokes it
	nbrs      []int // every node it shares an edge with
}

// cgEdge is an edge with the indexes of its ends in the sorted nodes.
type cgEdge struct {
	*adminapi.GraphEdge
	from, to int
}

// CallGraph draws an app's call graph (GET /v1/apps/{app}/graph) as
// columns from left to right: what triggers functions (routes, topics,
// object prefixes, schedules), then the functions, a function that another
// one invokes in a column after its caller's, then what functions reach
// (tables, object patterns, topics they publish to, hosts, secrets).
//
// Each node is a <g class="node TYPE" data-node="TYPE:NAME">, each edge a
// <g class="edge …" data-from="TYPE:NAME" data-to="TYPE:NAME">, its
// classes saying whether the manifest declares it ("declared" or
// "undeclared"), whether it was seen at run time ("observed" or
// "unobserved"), and "refused" when a call on it was refused. A graph
// with no edges gives a sentence instead of an empty picture.
func CallGraph(g adminapi.Graph) template.HTML {
	if len(g.Edges) == 0 {
		if g.App == "" {
			return template.HTML(empty("No edges recorded yet."))
		}
		return template.HTML(empty("No edges recorded for app " + g.App + " yet."))
	}

	// The nodes, sorted by type and name, so that everything after —
	// layers, rows, the order of elements — is the same for the same
	// graph whatever order its edges came in.
	// The map's key is the pair, not "TYPE:NAME": a colon in a type
	// must not merge two nodes.
	type nodeID struct{ typ, name string }
	idx := make(map[nodeID]int, len(g.Edges))
	var nodes []*cgNode
	add := func(typ, name string) {
		if _, ok := idx[nodeID{typ, name}]; !ok {
			idx[nodeID{typ, name}] = len(nodes)
			nodes = append(nodes, &cgNode{typ: typ, name: name, key: typ + ":" + name, fn: typ == "function"})
		}
	}
	for _, e := range g.Edges {
		add(e.FromType, e.From)
		add(e.ToType, e.To)
	}
	slices.SortFunc(nodes, func(a, b *cgNode) int {
		return cmp.Or(strings.Compare(a.typ, b.typ), strings.Compare(a.name, b.name))
	})
	for i, n := range nodes {
		idx[nodeID{n.typ, n.name}] = i
	}

	// The edges in the order of their ends, for the same reason.
	edges := make([]cgEdge, len(g.Edges))
	for i := range g.Edges {
		e := &g.Edges[i]
		edges[i] = cgEdge{e, idx[nodeID{e.FromType, e.From}], idx[nodeID{e.ToType, e.To}]}
	}
	slices.SortStableFunc(edges, func(a, b cgEdge) int {
		return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to), strings.Compare(a.Kind, b.Kind))
	})
	for _, e := range edges {
		f, t := e.from, e.to
		if f == t {
			continue
		}
		nodes[t].target = true
		nodes[f].nbrs = append(nodes[f].nbrs, t)
		nodes[t].nbrs = append(nodes[t].nbrs, f)
		if nodes[f].fn && nodes[t].fn {
			nodes[f].succs = append(nodes[f].succs, t)
			nodes[t].invoked = true
		}
	}
	for _, n := range nodes {
		// Edges were sorted by their ends, so these are nearly sorted;
		// sorting makes the walk below independent of the input order.
		slices.Sort(n.succs)
		n.succs = slices.Compact(n.succs)
		slices.Sort(n.nbrs)
		n.nbrs = slices.Compact(n.nbrs)
	}

	layer := layers(nodes)

	// Columns: 0 for triggers, 1..maxLayer for functions, then resources.
	maxLayer := 0
	for i, n := range nodes {
		if n.fn {
			n.col = layer[i]
			maxLayer = max(maxLayer, n.col)
		}
	}
	resCol := maxLayer + 1
	hasTrig := false
	for _, n := range nodes {
		if !n.fn {
			if n.target {
				n.col = resCol
			} else {
				n.col = 0
				hasTrig = true
			}
		}
	}
	cols := make([][]int, resCol+1)
	for i, n := range nodes {
		cols[n.col] = append(cols[n.col], i)
	}

	// Rows. The first function column is packed in name order; every
	// other column puts a node level with the highest neighbour already
	// placed (a trigger beside the function it starts, a table beside
	// the first function using it) unless that row is taken, when it goes
	// below. It keeps most edges short and level without a crossing-
	// minimisation pass, which would cost far more than O(n log n).
	top := cgMargin + cgLegendH
	place := func(col []int) {
		type want struct {
			i int
			y float64
		}
		ws := make([]want, len(col))
		for k, i := range col {
			y := top
			found := false
			for _, j := range nodes[i].nbrs {
				if nodes[j].placed && (!found || nodes[j].y < y) {
					y, found = nodes[j].y, true
				}
			}
			ws[k] = want{i, y}
		}
		// Stable on the name order the column already has.
		slices.SortStableFunc(ws, func(a, b want) int { return cmp.Compare(a.y, b.y) })
		next := top
		for _, w := range ws {
			n := nodes[w.i]
			n.y = max(w.y, next)
			n.placed = true
			next = n.y + cgPitchY
		}
	}
	for c := 1; c <= maxLayer; c++ {
		place(cols[c])
	}
	place(cols[0])
	place(cols[resCol])

	// Leave out the trigger column when there is none, so a graph of
	// functions and resources only does not start with a blank column.
	shift := 0
	if !hasTrig {
		shift = 1
	}
	x := func(n *cgNode) float64 { return cgMargin + float64(n.col-shift)*cgPitchX }

	height := top
	for _, n := range nodes {
		height = max(height, n.y+cgNodeH)
	}
	height += cgMargin
	width := cgMargin*2 + float64(resCol+1-shift)*cgPitchX - cgColGap
	width = max(width, cgMargin*2+legendW)

	id := idFor("cg", g.App)
	var b strings.Builder
	b.Grow(len(nodes)*260 + len(edges)*420 + 2048)
	open(&b, "callgraph", id, "Call graph of app "+g.App, width, height)
	cgDefs(&b, id)
	cgLegend(&b, id)

	// Edges under nodes, so a curve never hides a name.
	b.WriteString(`<g class="edges" fill="none">`)
	for _, e := range edges {
		f, t := nodes[e.from], nodes[e.to]
		refused := e.Refused || e.RefusedCount > 0
		b.WriteString(`<g class="`)
		b.WriteString(edgeClass(e.Declared, e.Observed, refused, e.Flags))
		b.WriteString(`" data-from="`)
		b.WriteString(esc(f.key))
		b.WriteString(`" data-to="`)
		b.WriteString(esc(t.key))
		b.WriteString(`" data-kind="`)
		b.WriteString(esc(e.Kind))
		b.WriteString(`">`)
		titled(&b, edgeTitle(e.GraphEdge, f, t))
		b.WriteString(`<path d="`)
		edgePath(&b, x(f), f.y, x(t), t.y, f == t)
		b.WriteString(`" stroke="`)
		marker := id + "-arrow"
		switch {
		case refused:
			b.WriteString(`#c0392b`)
			marker = id + "-arrow-refused"
		case !e.Declared:
			b.WriteString(`#d68910`)
		default:
			b.WriteString(`#7f8c8d`)
		}
		b.WriteString(`" stroke-width="1.5"`)
		if !e.Observed {
			b.WriteString(` stroke-dasharray="5 4"`)
		}
		b.WriteString(` marker-end="url(#`)
		b.WriteString(marker)
		b.WriteString(`)"/></g>`)
	}
	b.WriteString(`</g><g class="nodes">`)
	for _, n := range nodes {
		nx := x(n)
		b.WriteString(`<g class="node `)
		b.WriteString(token(n.typ, "other"))
		b.WriteString(`" data-node="`)
		b.WriteString(esc(n.key))
		b.WriteString(`">`)
		titled(&b, describe(n.typ, n.name))
		b.WriteString(`<rect x="`)
		wnum(&b, nx)
		b.WriteString(`" y="`)
		wnum(&b, n.y)
		b.WriteString(`" width="`)
		wnum(&b, cgNodeW)
		b.WriteString(`" height="`)
		wnum(&b, cgNodeH)
		b.WriteString(`" rx="4" fill="`)
		b.WriteString(nodeFill(n.typ))
		b.WriteString(`" stroke="#5d6d7e"/>`)
		text(&b, "label", nx+6, n.y+cgNodeH/2+4, "", truncate(n.name, cgLabel))
		b.WriteString(`</g>`)
	}
	b.WriteString(`</g></svg>`)
	return template.HTML(b.String())
}

// layers gives each function its column: 1 for a function no other
// function invokes, else one more than the column of its furthest caller
// (the longest path to it over invoke edges), so a chain of invocations
// reads left to right.
//
// A cycle (a invokes b invokes a) would make that path endless, so the
// edges that close cycles are left out: a depth-first walk over invoke
// edges, from the functions nobody invokes first and then in name order,
// finds them as the edges back to a function still on its stack, and they
// are exactly the edges that go backwards in the walk's reverse postorder.
// So a cycle reached from a caller starts where the caller enters it, and
// the walk depends only on the name order, so the picture is stable. The
// walk keeps its own stack: a chain of thousands of functions would
// otherwise recurse as deep.
func layers(nodes []*cgNode) []int {
	const (
		unseen = iota
		onStack
		done
	)
	state := make([]uint8, len(nodes))
	order := make([]int, 0, len(nodes)) // postorder, reversed below
	type frame struct{ v, next int }
	var stack []frame
	walk := func(s int) {
		state[s] = onStack
		stack = append(stack[:0], frame{v: s})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if succs := nodes[top.v].succs; top.next < len(succs) {
				w := succs[top.next]
				top.next++
				if state[w] == unseen {
					state[w] = onStack
					stack = append(stack, frame{v: w})
				}
				continue
			}
			state[top.v] = done
			order = append(order, top.v)
			stack = stack[:len(stack)-1]
		}
	}
	for _, roots := range []bool{true, false} {
		for i, n := range nodes {
			if n.fn && state[i] == unseen && (!roots || !n.invoked) {
				walk(i)
			}
		}
	}
	slices.Reverse(order)
	pos := make([]int, len(nodes))
	for k, v := range order {
		pos[v] = k
	}
	layer := make([]int, len(nodes))
	for _, v := range order {
		layer[v] = max(layer[v], 1)
		for _, w := range nodes[v].succs {
			if pos[w] > pos[v] { // not an edge closing a cycle
				layer[w] = max(layer[w], layer[v]+1)
			}
		}
	}
	return layer
}

// edgePath is the curve from one node's box to another's: from the right
// side of the source to the left side of a target in a later column; the
// other way round for a target in an earlier column (a topic a function
// publishes to, on the right, that triggers a function in the middle); a
// bulge to the right for two nodes of one column; a loop for a function
// that invokes itself.
//
// An edge that skips columns (a function fetching a host, past the
// functions it invokes) would pass behind the boxes in between, and the
// box's neighbour edges would seem to be it; it runs instead along the
// gap between two rows, which lines up across columns since every node
// sits on the same grid of rows.
func edgePath(b *strings.Builder, fx, fy, tx, ty float64, self bool) {
	fy += cgNodeH / 2
	ty += cgNodeH / 2
	pt := func(cmd string, x, y float64) {
		b.WriteString(cmd)
		wnum(b, x)
		b.WriteByte(',')
		wnum(b, y)
	}
	// gap is the middle of the gap next to the source's row, on the
	// target's side.
	gap := fy + (cgNodeH+cgRowGap)/2
	if ty < fy {
		gap = fy - (cgNodeH+cgRowGap)/2
	}
	switch {
	case self:
		r := fx + cgNodeW
		pt("M", r, fy-6)
		pt("C", r+40, fy-26)
		pt(" ", r+40, fy+26)
		pt(" ", r+2, fy+8)
	case tx-fx > cgPitchX || fx-tx > cgPitchX:
		a, z, d := fx+cgNodeW, tx-2, 30.0
		if tx < fx {
			a, z, d = fx, tx+cgNodeW+2, -30
		}
		pt("M", a, fy)
		pt("C", a+d, fy)
		pt(" ", a+d, gap)
		pt(" ", a+2*d, gap)
		b.WriteString("H")
		wnum(b, z-2*d)
		pt("C", z-d, gap)
		pt(" ", z-d, ty)
		pt(" ", z, ty)
	case tx > fx, tx < fx:
		a, z := fx+cgNodeW, tx-2
		if tx < fx {
			a, z = fx, tx+cgNodeW+2
		}
		d := (z - a) / 2
		pt("M", a, fy)
		pt("C", a+d, fy)
		pt(" ", z-d, ty)
		pt(" ", z, ty)
	default:
		a, z := fx+cgNodeW, tx+cgNodeW+2
		pt("M", a, fy)
		pt("C", a+50, fy)
		pt(" ", z+50, ty)
		pt(" ", z, ty)
	}
}

// edgeClass is the class list of an edge: its state in the manifest and
// at run time, and its flags, all from fixed words so no data reaches it.
func edgeClass(declared, observed, refused bool, flags []string) string {
	c := "edge"
	if declared {
		c += " declared"
	} else {
		c += " undeclared"
	}
	if observed {
		c += " observed"
	} else {
		c += " unobserved"
	}
	if refused {
		c += " refused"
	}
	for _, f := range flags {
		switch f {
		case adminapi.FlagNarrow:
			c += " narrow"
		case adminapi.FlagNeverTriggered:
			c += " never-triggered"
		case adminapi.FlagOutside:
			c += " outside"
		}
	}
	return c
}

// edgeTitle is an edge's tooltip: "thumbnail → table photos (kv):
// declared, observed 12 times, refused 0; grant to narrow".
func edgeTitle(e *adminapi.GraphEdge, f, t *cgNode) string {
	var b strings.Builder
	b.WriteString(describe(f.typ, f.name))
	b.WriteString(" → ")
	b.WriteString(describe(t.typ, t.name))
	if e.Kind != "" {
		b.WriteString(" (" + e.Kind + ")")
	}
	if e.Declared {
		b.WriteString(": declared, ")
	} else {
		b.WriteString(": not declared, ")
	}
	if e.Observed {
		b.WriteString("observed " + strconv.FormatInt(e.Count, 10) + " time")
		if e.Count != 1 {
			b.WriteString("s")
		}
	} else {
		b.WriteString("never observed")
	}
	b.WriteString(", refused " + strconv.FormatInt(e.RefusedCount, 10))
	if len(e.Flags) > 0 {
		b.WriteString("; " + strings.Join(e.Flags, ", "))
	}
	return b.String()
}

// describe names a node for a sentence: a function by its name, anything
// else with its type in front ("table photos").
func describe(typ, name string) string {
	if typ == "function" {
		return name
	}
	return typ + " " + name
}

// nodeFill is a node's default colour by type, for a page without the
// console stylesheet; the stylesheet overrides it through the type class.
func nodeFill(typ string) string {
	switch typ {
	case "function":
		return "#d6eaf8"
	case "route", "topic", "prefix", "schedule":
		return "#fdebd0"
	default:
		return "#e8f6f3"
	}
}

// legendW is the legend's width, at most: four entries of a short line
// and up to 24 characters.
const legendW = 4 * (38 + 24*charW + 24)

// cgDefs writes the arrowheads. Their ids start with the graph's own
// prefix, so two graphs on one page each point at their own.
func cgDefs(b *strings.Builder, id string) {
	b.WriteString(`<defs>`)
	for _, m := range []struct{ suffix, fill string }{{"arrow", "#7f8c8d"}, {"arrow-refused", "#c0392b"}} {
		b.WriteString(`<marker id="`)
		b.WriteString(id + "-" + m.suffix)
		b.WriteString(`" class="`)
		b.WriteString(m.suffix)
		b.WriteString(`" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="`)
		b.WriteString(m.fill)
		b.WriteString(`"/></marker>`)
	}
	b.WriteString(`</defs>`)
}

// cgLegend writes what the line styles mean, with the same classes as the
// edges so the stylesheet colours both alike.
func cgLegend(b *strings.Builder, id string) {
	b.WriteString(`<g class="legend">`)
	x := cgMargin
	for _, l := range []struct {
		class, stroke, dash, marker, label string
	}{
		{"edge declared observed", "#7f8c8d", "", "arrow", "declared, observed"},
		{"edge undeclared observed", "#d68910", "", "arrow", "observed, not declared"},
		{"edge declared unobserved", "#7f8c8d", "5 4", "arrow", "declared, never observed"},
		{"edge refused", "#c0392b", "", "arrow-refused", "refused"},
	} {
		y := cgMargin + 8
		b.WriteString(`<g class="`)
		b.WriteString(l.class)
		b.WriteString(`"><path d="M`)
		wnum(b, x)
		b.WriteString(",")
		wnum(b, y)
		b.WriteString("h30")
		b.WriteString(`" fill="none" stroke="`)
		b.WriteString(l.stroke)
		b.WriteString(`" stroke-width="1.5"`)
		if l.dash != "" {
			b.WriteString(` stroke-dasharray="` + l.dash + `"`)
		}
		b.WriteString(` marker-end="url(#` + id + "-" + l.marker + `)"/>`)
		text(b, "label", x+38, y+4, "", l.label)
		b.WriteString(`</g>`)
		x += 38 + float64(len(l.label))*charW + 24
	}
	b.WriteString(`</g>`)
}
