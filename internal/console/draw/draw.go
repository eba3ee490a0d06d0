// Package draw owns the pictures of the web console: it turns an app's call
// graph, a trace, usage figures and time series into inline SVG drawn on
// the server, so the console needs no JavaScript and no resource from
// anywhere else, and can be served under a Content-Security-Policy that
// forbids inline script and foreign origins.
//
// Every function returns a template.HTML holding one <svg> element (or,
// for empty input, a short <p class="empty"> message) that a page template
// inserts as it is. That makes this package, not html/template, the one
// that escapes: every string that comes from data — names from manifests,
// labels, outcomes, trace IDs — goes through esc (for text and attribute
// values) or token (for class names), never into a style= attribute or an
// event attribute. Nothing refers outside the picture: the only references
// are url(#id) from edges to the picture's own arrowheads. Colours are
// presentation attributes with sane defaults, and every element the page
// may want to restyle carries a class the console stylesheet can target
// (presentation attributes lose to any CSS rule).
//
// The output is deterministic: the same input gives the same bytes, so
// pages can be cached and compared, and tests can check exact output.
// No input makes a function panic.
package draw

import (
	"hash"
	"hash/fnv"
	"html"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// charW is the width one character of a 12 px sans-serif label is assumed
// to take. The server cannot measure text, so labels are cut to the number
// of characters that fit a box at this width; the full text stays in a
// <title> the browser shows as a tooltip.
const charW = 7.0

// svgNS is the namespace of the inline SVG. HTML parsers do not need it,
// but the same markup may be saved as an .svg file or parsed as XML.
const svgNS = "http://www.w3.org/2000/svg"

// esc makes s safe as XML and HTML text or a double- or single-quoted
// attribute value: characters XML does not allow at all (most control
// characters, invalid UTF-8) become U+FFFD, since no escape could carry
// them, and the markup characters become entities.
func esc(s string) string {
	return html.EscapeString(clean(s))
}

// clean replaces what XML 1.0 forbids in a document (Char production) with
// U+FFFD. Most strings need nothing, so they are returned as they are.
func clean(s string) string {
	ok := true
	for i, r := range s {
		if !xmlChar(r) || (r == utf8.RuneError && isBad(s, i)) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		if !xmlChar(r) || (r == utf8.RuneError && isBad(s, i)) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isBad reports whether the RuneError at s[i] stands for invalid UTF-8
// (one byte) rather than a U+FFFD spelled out in the string (three).
func isBad(s string, i int) bool {
	_, n := utf8.DecodeRuneInString(s[i:])
	return n == 1
}

func xmlChar(r rune) bool {
	switch {
	case r == 0x9 || r == 0xA || r == 0xD:
		return true
	case r >= 0x20 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// token turns a string from data into one CSS class name: lower-case
// ASCII letters, digits and hyphens, at most 32 characters ("function
// error" → "function-error"). Whatever else the string holds cannot reach
// the class attribute, so data never adds a second class or breaks out of
// the attribute. An empty result gives fallback.
func token(s, fallback string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		if b.Len() >= 32 {
			break
		}
		switch {
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
			fallthrough
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
	}
	if b.Len() == 0 {
		return fallback
	}
	return b.String()
}

// truncate cuts s to at most n characters, the last one an ellipsis when
// anything was cut.
func truncate(s string, n int) string {
	if n < 1 {
		n = 1
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, k := 0, 0
	for i = range s {
		if k == n-1 {
			break
		}
		k++
	}
	return s[:i] + "…"
}

// num formats a coordinate with at most one decimal: enough for a screen,
// and short, which matters for a graph of thousands of nodes. A value
// that is not finite (from a NaN in the data) is drawn at 0 rather than
// written as "NaN", which would make the attribute invalid.
func num(v float64) string {
	var buf [32]byte
	return string(appendNum(buf[:0], v))
}

// wnum writes num(v) to b without making a string of it: a graph of a
// thousand nodes writes tens of thousands of coordinates.
func wnum(b *strings.Builder, v float64) {
	var buf [32]byte
	b.Write(appendNum(buf[:0], v))
}

func appendNum(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, '0')
	}
	t := math.Round(v * 10) // tenths
	if math.Abs(t) >= 1e15 {
		return strconv.AppendFloat(dst, t/10, 'f', -1, 64)
	}
	// Integer formatting, several times faster than AppendFloat.
	i := int64(t)
	if i < 0 {
		dst, i = append(dst, '-'), -i
	}
	dst = strconv.AppendInt(dst, i/10, 10)
	if i%10 != 0 {
		dst = append(dst, '.', byte('0'+i%10))
	}
	return dst
}

// finite returns v, or 0 when v is NaN or infinite, so one odd value in
// the data cannot turn a whole chart's scale into NaN.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// compact formats a value for a label: 950, 1.2k, 34k, 3.4M, 0.25. Small
// fractional values keep two decimals (a GB-second figure is often well
// under one), whole numbers none.
func compact(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	if v < 1000 {
		switch {
		case v == math.Trunc(v):
			return sign + strconv.FormatFloat(v, 'f', 0, 64)
		case v < 0.01:
			// Two decimals would say 0.00: keep two significant digits.
			return sign + strconv.FormatFloat(v, 'g', 2, 64)
		case v < 10:
			return sign + trimZero(strconv.FormatFloat(v, 'f', 2, 64))
		default:
			s := trimZero(strconv.FormatFloat(v, 'f', 1, 64))
			if s == "1000" {
				return sign + "1k"
			}
			return sign + s
		}
	}
	units := []struct {
		div float64
		suf string
	}{{1e3, "k"}, {1e6, "M"}, {1e9, "G"}, {1e12, "T"}, {1e15, "P"}}
	for i, u := range units {
		x := v / u.div
		last := i == len(units)-1
		if x >= 1000 && !last {
			continue
		}
		var s string
		if x >= 100 {
			s = strconv.FormatFloat(x, 'f', 0, 64)
		} else {
			s = trimZero(strconv.FormatFloat(x, 'f', 1, 64))
		}
		// 999.96k rounds to "1000": say 1M instead.
		if s == "1000" && !last {
			return sign + "1" + units[i+1].suf
		}
		return sign + s + u.suf
	}
	return sign + strconv.FormatFloat(v, 'g', 3, 64) // not reached
}

// trimZero drops the trailing zeros of a fixed-point number (and the point
// if nothing is left after it): "1.50" → "1.5", "2.0" → "2".
func trimZero(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// idFor derives the prefix of the ids one SVG defines (its <title>, its
// markers) from what it shows. Several pictures on one page share one ID
// space, so a fixed id would let the second picture's aria-labelledby or
// marker reference resolve to the first picture's element.
func idFor(kind string, parts ...string) string {
	h := idHash()
	h.add(parts...)
	return h.id(kind)
}

// hasher accumulates the strings an id derives from.
type hasher struct{ h hash.Hash64 }

func idHash() hasher { return hasher{fnv.New64a()} }

func (h hasher) add(parts ...string) {
	for _, p := range parts {
		h.h.Write([]byte(p))
		h.h.Write([]byte{0}) // "ab","c" and "a","bc" differ
	}
}

// id is kind and 40 bits of the hash: short, and unlikely to meet another
// picture's on the same page.
func (h hasher) id(kind string) string {
	return kind + "-" + strconv.FormatUint(h.h.Sum64()&0xffffffffff, 36)
}

// open writes the <svg> start tag and its <title>. The width and height
// are the natural size in CSS pixels; with the viewBox the page can scale
// it (svg { max-width: 100%; height: auto }) and it keeps its proportions.
func open(b *strings.Builder, class, id, title string, w, h float64) {
	b.WriteString(`<svg xmlns="`)
	b.WriteString(svgNS)
	b.WriteString(`" class="draw `)
	b.WriteString(class)
	b.WriteString(`" role="img" aria-labelledby="`)
	b.WriteString(id)
	b.WriteString(`-title" viewBox="0 0 `)
	wnum(b, w)
	b.WriteByte(' ')
	wnum(b, h)
	b.WriteString(`" width="`)
	wnum(b, w)
	b.WriteString(`" height="`)
	wnum(b, h)
	b.WriteString(`" preserveAspectRatio="xMinYMin meet" font-family="sans-serif" font-size="12"><title id="`)
	b.WriteString(id)
	b.WriteString(`-title">`)
	b.WriteString(esc(title))
	b.WriteString(`</title>`)
}

// empty is what a function returns for nothing to draw: a sentence, which
// a screen reader reads and which takes no room, rather than a blank box.
func empty(msg string) string {
	return `<p class="empty">` + esc(msg) + `</p>`
}

// text writes a <text> element at x, y with the given class and anchor
// ("" for the default, start).
func text(b *strings.Builder, class string, x, y float64, anchor, s string) {
	b.WriteString(`<text class="`)
	b.WriteString(class)
	b.WriteString(`" x="`)
	wnum(b, x)
	b.WriteString(`" y="`)
	wnum(b, y)
	b.WriteString(`"`)
	if anchor != "" {
		b.WriteString(` text-anchor="`)
		b.WriteString(anchor)
		b.WriteString(`"`)
	}
	b.WriteString(`>`)
	b.WriteString(esc(s))
	b.WriteString(`</text>`)
}

// rect writes a <rect>; fill is a default colour the stylesheet can
// override through class.
func rect(b *strings.Builder, class string, x, y, w, h float64, fill string) {
	b.WriteString(`<rect class="`)
	b.WriteString(class)
	b.WriteString(`" x="`)
	wnum(b, x)
	b.WriteString(`" y="`)
	wnum(b, y)
	b.WriteString(`" width="`)
	wnum(b, w)
	b.WriteString(`" height="`)
	wnum(b, h)
	b.WriteString(`" fill="`)
	b.WriteString(fill)
	b.WriteString(`"/>`)
}

// titled writes a <title> child, the browser's tooltip for its parent.
func titled(b *strings.Builder, s string) {
	b.WriteString(`<title>`)
	b.WriteString(esc(s))
	b.WriteString(`</title>`)
}
