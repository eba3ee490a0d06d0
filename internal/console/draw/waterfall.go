package draw

import (
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
)

// The geometry of a waterfall.
const (
	wfMargin = 16.0
	wfHead   = 40.0 // title and the time scale
	wfLabelW = 330.0
	wfBarW   = 460.0
	wfValueW = 170.0
	wfRowH   = 20.0
	wfBarH   = 13.0
	wfIndent = 12.0
	// wfValueChars is how many characters fit the value column.
	wfValueChars = 24
	// wfMaxIndent caps the indentation, so a deep chain of invocations
	// does not push its labels out of their column.
	wfMaxIndent = 12
)

// wfRow is one invocation in the order drawn.
type wfRow struct {
	n     *adminapi.TraceNode
	depth int
}

// Waterfall draws a trace's causal tree (GET /v1/traces/{id}) as a
// waterfall: one row per invocation, depth first (an invocation, then
// those it caused), its label indented by depth, and a bar from its start
// (relative to the earliest start in the trace) as long as it took.
// Each row is a <g class="span OUTCOME" data-span="SPANID">: "span ok",
// or "span error" and the outcome as a class name ("span error timeout",
// "span error function-error"). A trace with no invocation gives a
// sentence.
func Waterfall(t adminapi.Trace) template.HTML {
	// Depth first with an explicit stack, children in the order given
	// (the server sorts them by start). A node met twice — the tree is a
	// graph of pointers, and nothing stops a caller building a cycle —
	// is drawn once.
	var rows []wfRow
	seen := map[*adminapi.TraceNode]bool{}
	var stack []wfRow
	push := func(ns []*adminapi.TraceNode, depth int) {
		for i := len(ns) - 1; i >= 0; i-- {
			stack = append(stack, wfRow{ns[i], depth})
		}
	}
	push(t.Children, 0)
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.n == nil || seen[it.n] {
			continue
		}
		seen[it.n] = true
		rows = append(rows, it)
		push(it.n.Children, it.depth+1)
	}
	if len(rows) == 0 {
		return template.HTML(empty("Trace " + t.TraceID + " has no invocations."))
	}

	// Offsets from the earliest start. A zero start (an invocation whose
	// start was not recorded) counts as the earliest rather than dragging
	// the origin to year 1.
	var t0 time.Time
	for _, r := range rows {
		if s := r.n.Start; !s.IsZero() && (t0.IsZero() || s.Before(t0)) {
			t0 = s
		}
	}
	offset := func(n *adminapi.TraceNode) float64 {
		if n.Start.IsZero() || t0.IsZero() {
			return 0
		}
		return float64(n.Start.Sub(t0)) / float64(time.Millisecond)
	}
	dur := func(n *adminapi.TraceNode) float64 { return max(finite(n.DurationMS), 0) }
	end := 0.0
	for _, r := range rows {
		end = max(end, offset(r.n)+dur(r.n))
	}
	scale := 0.0
	if end > 0 && !math.IsInf(end, 0) {
		scale = wfBarW / end
	}

	width := wfMargin*2 + wfLabelW + wfBarW + 8 + wfValueW
	height := wfMargin*2 + wfHead + float64(len(rows))*wfRowH
	title := "Trace " + t.TraceID
	if t.Outcome != "" {
		title += ": " + t.Outcome
	}
	title += ", " + strconv.Itoa(len(rows)) + " invocations, " + ms(t.DurationMS)

	var b strings.Builder
	b.Grow(len(rows)*420 + 1024)
	open(&b, "waterfall", idFor("trace", t.TraceID), title, width, height)
	text(&b, "chart-title", wfMargin, wfMargin+12, "", title)
	x0 := wfMargin + wfLabelW
	b.WriteString(`<g class="axis x">`)
	for _, f := range []float64{0, 0.5, 1} {
		x := x0 + f*wfBarW
		b.WriteString(`<path d="M` + num(x) + "," + num(wfMargin+wfHead-4) + "V" + num(height-wfMargin) + `" stroke="#d5d8dc"/>`)
		anchor := "middle"
		switch f {
		case 0:
			anchor = "start"
		case 1:
			anchor = "end"
		}
		text(&b, "tick", x, wfMargin+wfHead-8, anchor, ms(f*end))
	}
	b.WriteString(`</g>`)

	for i, r := range rows {
		n := r.n
		y := wfMargin + wfHead + float64(i)*wfRowH
		name := n.App + "/" + n.Function
		if n.Trigger != "" {
			name += " (" + n.Trigger + ")"
		}
		value := ms(n.DurationMS) + " " + n.Outcome
		tip := name + " " + value
		if n.Status != 0 {
			tip += ", status " + strconv.Itoa(n.Status)
		}
		if n.Retries > 0 {
			tip += ", attempt " + strconv.Itoa(n.Attempt)
		}
		if n.Error != "" {
			tip += ": " + n.Error
		}
		class := "span ok"
		if n.Outcome != "ok" {
			class = "span error"
			if o := token(n.Outcome, ""); o != "" && o != "error" {
				class += " " + o
			}
		}
		fill := "#52be80"
		if n.Outcome != "ok" {
			fill = "#e74c3c"
		}
		indent := float64(min(r.depth, wfMaxIndent)) * wfIndent
		bx := x0 + offset(n)*scale
		bw := max(1, dur(n)*scale) // an instant still shows
		if scale == 0 {
			bx, bw = x0, 1
		}

		b.WriteString(`<g class="`)
		b.WriteString(class)
		b.WriteString(`" data-span="`)
		b.WriteString(esc(n.SpanID))
		b.WriteString(`">`)
		titled(&b, tip)
		chars := int((wfLabelW - 8 - indent) / charW)
		text(&b, "label", wfMargin+indent, y+wfBarH-2, "", truncate(name, chars))
		rect(&b, "bar", bx, y, bw, wfBarH, fill)
		text(&b, "value", x0+wfBarW+8, y+wfBarH-2, "", truncate(value, wfValueChars))
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// ms formats a duration in milliseconds: "0.42 ms", "12.3 ms", "1530 ms",
// "3.6M ms".
func ms(v float64) string {
	v = finite(v)
	switch a := math.Abs(v); {
	case a == 0:
		return "0 ms"
	case a < 1:
		return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
	case a < 1000:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	case a >= 1e6:
		return compact(v) + " ms" // not a 300-digit number from odd data
	default:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	}
}
