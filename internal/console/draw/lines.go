package draw

import (
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Point is one value of a series at a time.
type Point struct {
	T time.Time
	V float64
}

// Line is one series of a line chart. Class names it for the stylesheet
// ("invocations", "errors"); reduced to one class name, "lineN" (its
// position from 1) when empty.
type Line struct {
	Name   string
	Class  string
	Points []Point
}

// The geometry of a line chart.
const (
	lnW      = 640.0
	lnH      = 230.0
	lnLeft   = 56.0 // room for the y ticks' labels
	lnRight  = 20.0
	lnTop    = 34.0 // the visible title's band
	lnBottom = 50.0 // the x ticks' labels and the legend
)

// palette gives lines without a stylesheet distinct colours.
var palette = []string{"#2e86c1", "#c0392b", "#27ae60", "#8e44ad", "#d68910", "#17a589"}

// Lines draws a small line chart — invocations and errors per minute over
// the last hour, say: time along the x axis with a few ticks in UTC
// (HH:MM, with seconds when the span is under five minutes, with the date
// when it is over a day), the values up the y axis from 0 (or the lowest
// negative value) to a round number above the largest, and each line a
// <polyline class="line CLASS">. Points need not be in time order; those
// with a zero time or a value that is not finite are left out. No points
// at all gives a sentence.
func Lines(title string, lines []Line, unit string) template.HTML {
	var tmin, tmax time.Time
	vmin, vmax := 0.0, 0.0
	n := 0
	for _, l := range lines {
		for _, p := range l.Points {
			if !usable(p) {
				continue
			}
			if n == 0 || p.T.Before(tmin) {
				tmin = p.T
			}
			if n == 0 || p.T.After(tmax) {
				tmax = p.T
			}
			vmin, vmax = min(vmin, p.V), max(vmax, p.V)
			n++
		}
	}
	if n == 0 {
		return template.HTML(empty(title + ": no data."))
	}
	span := tmax.Sub(tmin)
	if span <= 0 {
		// One instant: give it a minute so it can be placed at all.
		span = time.Minute
		tmin = tmin.Add(-span / 2)
	}
	top := nice(vmax)
	bottom := 0.0
	if vmin < 0 {
		bottom = -nice(-vmin)
	}
	if top <= bottom {
		top = bottom + 1
	}
	plotW := lnW - lnLeft - lnRight
	plotH := lnH - lnTop - lnBottom
	px := func(t time.Time) float64 {
		return lnLeft + float64(t.Sub(tmin))/float64(span)*plotW
	}
	py := func(v float64) float64 {
		return lnTop + (top-v)/(top-bottom)*plotH
	}

	h := idHash()
	h.add(title, unit)
	for _, l := range lines {
		h.add(l.Name, l.Class, strconv.Itoa(len(l.Points)))
	}
	h.add(tmin.UTC().Format(time.RFC3339Nano), tmax.UTC().Format(time.RFC3339Nano))
	id := h.id("lines")

	var b strings.Builder
	b.Grow(n*16 + len(lines)*200 + 2048)
	open(&b, "lines", id, title, lnW, lnH)
	text(&b, "chart-title", lnLeft, 18, "", title)

	// Axes and grid. The stroke is on the paths, not the groups, so the
	// tick labels inside do not inherit an outline.
	const grid = `" stroke="#d5d8dc"/>`
	b.WriteString(`<g class="axis y">`)
	ticks := []float64{0, top / 2, top}
	if bottom < 0 {
		ticks = append([]float64{bottom}, ticks...)
	}
	suffix := ""
	if unit != "" {
		suffix = " " + unit
	}
	for _, v := range ticks {
		y := py(v)
		b.WriteString(`<path d="M` + num(lnLeft) + "," + num(y) + "H" + num(lnW-lnRight) + grid)
		text(&b, "tick", lnLeft-6, y+4, "end", compact(v))
	}
	if unit != "" {
		text(&b, "unit", lnLeft-6, lnTop-10, "end", unit)
	}
	b.WriteString(`</g><g class="axis x">`)
	times, layout := timeTicks(tmin, tmin.Add(span))
	for _, t := range times {
		x := px(t)
		b.WriteString(`<path d="M` + num(x) + "," + num(lnTop+plotH) + "v4" + grid)
		// A label at either end would stick out of the picture.
		anchor := "middle"
		switch {
		case x < lnLeft+30:
			anchor = "start"
		case x > lnW-lnRight-30:
			anchor = "end"
		}
		text(&b, "tick", x, lnTop+plotH+16, anchor, t.UTC().Format(layout))
	}
	text(&b, "unit", lnW-lnRight, lnH-12, "end", "UTC")
	b.WriteString(`</g>`)

	// The lines, then the legend under the axis.
	b.WriteString(`<g class="series" fill="none" stroke-width="1.5">`)
	for i, l := range lines {
		class := token(l.Class, "line"+strconv.Itoa(i+1))
		pts := make([]Point, 0, len(l.Points))
		for _, p := range l.Points {
			if usable(p) {
				pts = append(pts, p)
			}
		}
		slices.SortStableFunc(pts, func(a, b Point) int { return a.T.Compare(b.T) })
		last := "no data"
		if len(pts) > 0 {
			last = "last " + compact(pts[len(pts)-1].V) + suffix
		}
		b.WriteString(`<g data-line="`)
		b.WriteString(esc(l.Name))
		b.WriteString(`">`)
		titled(&b, l.Name+": "+last)
		b.WriteString(`<polyline class="line `)
		b.WriteString(class)
		b.WriteString(`" stroke="`)
		b.WriteString(palette[i%len(palette)])
		b.WriteString(`" points="`)
		for k, p := range pts {
			if k > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(num(px(p.T)) + "," + num(py(p.V)))
		}
		b.WriteString(`"/>`)
		if len(pts) == 1 {
			// A polyline of one point draws nothing.
			b.WriteString(`<circle class="dot ` + class + `" cx="` + num(px(pts[0].T)) + `" cy="` + num(py(pts[0].V)) + `" r="2.5" fill="` + palette[i%len(palette)] + `"/>`)
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</g><g class="legend">`)
	x := lnLeft
	for i, l := range lines {
		class := token(l.Class, "line"+strconv.Itoa(i+1))
		y := lnH - 12
		b.WriteString(`<path class="line ` + class + `" d="M` + num(x) + "," + num(y-4) + `h18" fill="none" stroke-width="2" stroke="` + palette[i%len(palette)] + `"/>`)
		label := truncate(l.Name, 20)
		text(&b, "label", x+24, y, "", label)
		x += 24 + float64(len([]rune(label)))*charW + 16
	}
	b.WriteString(`</g></svg>`)
	return template.HTML(b.String())
}

// tickSteps are the intervals an axis of time may be marked at: each a
// number a reader counts in.
var tickSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
}

// timeTicks marks from..to at the smallest of tickSteps that gives at most
// five intervals, at round times (14:00, 14:15 …, not 14:14, 14:29), and
// says how to label them: with seconds under a minute's step, with the
// date when a step is a day or the span crosses days. A span too long
// for any step is cut in four.
func timeTicks(from, to time.Time) ([]time.Time, string) {
	span := to.Sub(from)
	for _, step := range tickSteps {
		if span > 5*step {
			continue
		}
		var ts []time.Time
		t := from.Truncate(step)
		if t.Before(from) {
			t = t.Add(step)
		}
		for ; !t.After(to) && len(ts) < 8; t = t.Add(step) {
			ts = append(ts, t)
		}
		switch {
		case step < time.Minute:
			return ts, "15:04:05"
		case step >= 24*time.Hour:
			return ts, "Jan 2"
		case span > 24*time.Hour:
			return ts, "Jan 2 15:04"
		}
		return ts, "15:04"
	}
	ts := make([]time.Time, 5)
	for i := range ts {
		ts[i] = from.Add(span / 4 * time.Duration(i)) // span*i could overflow
	}
	return ts, "2006-01-02"
}

// usable reports whether a point can be placed.
func usable(p Point) bool {
	return !p.T.IsZero() && !math.IsNaN(p.V) && !math.IsInf(p.V, 0)
}

// nice rounds v up to 1, 2 or 5 times a power of ten, so the axis's ticks
// (0, half, top) are round numbers. Zero and less give 1.
func nice(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if r := m * p; v <= r*(1+1e-9) && !math.IsInf(r, 0) {
			return r
		}
	}
	return v // near the largest float64: no rounder number above it
}
