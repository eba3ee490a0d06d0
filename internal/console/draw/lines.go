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

	// Axes and grid.
	b.WriteString(`<g class="axis y" stroke="#d5d8dc">`)
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
		b.WriteString(`<path d="M` + num(lnLeft) + "," + num(y) + "H" + num(lnW-lnRight) + `"/>`)
		text(&b, "tick", lnLeft-6, y+4, "end", compact(v))
	}
	b.WriteString(`</g><g class="axis x" stroke="#d5d8dc">`)
	layout := "15:04"
	switch {
	case span < 5*time.Minute:
		layout = "15:04:05"
	case span > 24*time.Hour:
		layout = "Jan 2 15:04"
	}
	const nTicks = 4
	for i := 0; i <= nTicks; i++ {
		t := tmin.Add(span / nTicks * time.Duration(i)) // span*i could overflow
		x := px(t)
		b.WriteString(`<path d="M` + num(x) + "," + num(lnTop+plotH) + "v4" + `"/>`)
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case nTicks:
			anchor = "end"
		}
		text(&b, "tick", x, lnTop+plotH+16, anchor, t.UTC().Format(layout))
	}
	b.WriteString(`</g>`)
	text(&b, "unit", lnW-lnRight, lnTop-6, "end", strings.TrimSpace("UTC"+suffix))

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
