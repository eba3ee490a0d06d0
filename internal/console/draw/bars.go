package draw

import (
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Bar is one row of a bar chart: what it is (Label), how much (Value) and
// an optional tooltip (Title; "Label: value unit" when empty).
type Bar struct {
	Label string
	Value float64
	Title string
}

// The geometry of a bar chart.
const (
	barMargin = 16.0
	barHead   = 26.0 // the visible title's band
	barLabelW = 170.0
	barMaxW   = 360.0
	barValueW = 110.0
	barRowH   = 22.0
	barH      = 15.0
	// barLabelChars is how many characters of a label fit its column.
	barLabelChars = 24
)

// Bars draws a horizontal bar chart with one row per bar, in the order
// given (the caller knows whether rank or name order suits): the label on
// the left, a bar as long as its value is to the largest one, and the
// value in short form (1.2k, 3.4M, 0.25) followed by unit. Each row is a
// <g class="bar" data-label="LABEL">. A negative or non-finite value
// draws no bar. No bars gives a sentence.
func Bars(title string, bars []Bar, unit string) template.HTML {
	if len(bars) == 0 {
		return template.HTML(empty(title + ": nothing to show."))
	}
	top := 0.0
	for _, br := range bars {
		if v := finite(br.Value); v > top {
			top = v
		}
	}
	suffix := ""
	if unit != "" {
		suffix = " " + unit
	}
	width := barMargin*2 + barLabelW + 8 + barMaxW + 8 + barValueW
	height := barMargin*2 + barHead + float64(len(bars))*barRowH

	h := idHash()
	h.add(title, unit)
	for _, br := range bars {
		h.add(br.Label, strconv.FormatFloat(br.Value, 'g', -1, 64))
	}
	id := h.id("bars")

	var b strings.Builder
	b.Grow(len(bars)*300 + 1024)
	open(&b, "bars", id, title, width, height)
	text(&b, "chart-title", barMargin, barMargin+12, "", title)
	x0 := barMargin + barLabelW + 8
	for i, br := range bars {
		y := barMargin + barHead + float64(i)*barRowH
		v := finite(br.Value)
		w := 0.0
		if top > 0 && v > 0 {
			w = math.Max(1, v/top*barMaxW) // a tiny value still shows
		}
		value := compact(br.Value) + suffix
		tip := br.Title
		if tip == "" {
			tip = br.Label + ": " + value
		}
		b.WriteString(`<g class="bar" data-label="`)
		b.WriteString(esc(br.Label))
		b.WriteString(`">`)
		titled(&b, tip)
		text(&b, "label", x0-8, y+barH-3, "end", truncate(br.Label, barLabelChars))
		rect(&b, "fill", x0, y, w, barH, "#5dade2")
		text(&b, "value", x0+w+6, y+barH-3, "", value)
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
