package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/build"
	"github.com/aegis-platform/aegis/manifest"
)

// format is the value of -o. It implements pflag.Value so that a wrong value
// is a flag error (exit 2) caught before the command runs.
type format string

const (
	formatTable format = "table"
	formatJSON  format = "json"
)

func (f *format) String() string { return string(*f) }
func (f *format) Type() string   { return "format" }
func (f *format) Set(s string) error {
	switch format(s) {
	case formatTable, formatJSON:
		*f = format(s)
		return nil
	}
	return fmt.Errorf("must be table or json")
}

// writeJSON writes v indented, ending with a newline. Nil slices are written
// as [] so that scripts can always iterate over the answer.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// writeTable writes rows under header, columns aligned.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// render writes items as JSON or as a table with one row per item.
func render[T any](w io.Writer, f format, items []T, header []string, row func(T) []string) error {
	if f == formatJSON {
		return writeJSON(w, nonNil(items))
	}
	rows := make([][]string, len(items))
	for i, it := range items {
		rows[i] = row(it)
	}
	return writeTable(w, header, rows)
}

func writeApps(w io.Writer, f format, apps []client.App) error {
	return render(w, f, apps, []string{"APP", "VERSION", "FUNCTIONS", "DEPLOYED"}, func(a client.App) []string {
		return []string{a.App, orDash(a.Version), orDash(strings.Join(a.Functions, ",")), timeCell(a.DeployedAt)}
	})
}

// writeVersions shows one row per version; the modules column lists
// function=digest pairs in function order, abbreviated like git's.
func writeVersions(w io.Writer, f format, vers []client.Version) error {
	return render(w, f, vers, []string{"VERSION", "ACTIVE", "CREATED", "FILE", "MODULES"}, func(v client.Version) []string {
		active := ""
		if v.Active {
			active = "*"
		}
		mods := make([]string, 0, len(v.Modules))
		for _, fn := range slices.Sorted(maps.Keys(v.Modules)) {
			mods = append(mods, fn+"="+short(v.Modules[fn]))
		}
		return []string{v.Version, active, timeCell(v.CreatedAt), orDash(v.File), orDash(strings.Join(mods, " "))}
	})
}

func writeFunctions(w io.Writer, f format, fns []client.Function) error {
	return render(w, f, fns, []string{"APP", "FUNCTION", "VERSION", "TRIGGERS", "ISOLATION", "SHA256"}, func(fn client.Function) []string {
		trig := make([]string, len(fn.Triggers))
		for i, t := range fn.Triggers {
			trig[i] = triggerString(t)
		}
		return []string{fn.App, fn.Function, orDash(fn.Version), orDash(strings.Join(trig, ", ")), orDash(fn.Isolation), short(fn.SHA256)}
	})
}

func writeRoutes(w io.Writer, f format, routes []client.Route) error {
	return render(w, f, routes, []string{"METHOD", "PATH", "APP", "FUNCTION", "AUTH"}, func(r client.Route) []string {
		auth := strings.Join(r.Auth, ",")
		if r.Public {
			auth = "public"
		}
		return []string{r.Method, r.Path, r.App, r.Function, orDash(auth)}
	})
}

func writeKeys(w io.Writer, f format, keys []client.Key) error {
	header := []string{"NAME", "CREATED", "STATUS", "SCOPES", "EXPIRES", "LAST USED", "RATE", "BUDGET", "LABELS"}
	return render(w, f, keys, header, func(k client.Key) []string {
		status := "active"
		switch {
		case k.Revoked:
			status = "revoked"
		case k.Expired:
			status = "expired"
		case k.Previous != nil:
			// The replaced secret still works until its overlap ends.
			status = "rotating (old until " + timePtrCell(k.Previous.ExpiresAt) + ")"
		}
		scopes := "all"
		if len(k.Scopes) > 0 {
			scopes = strings.Join(k.Scopes, ",")
		}
		var labels []string
		for _, name := range slices.Sorted(maps.Keys(k.Labels)) {
			labels = append(labels, name+"="+k.Labels[name])
		}
		rate, budget := "-", "-"
		if k.Rate != "" {
			rate = k.Rate + " (burst " + k.Burst + ")"
		}
		if k.Budget != "" {
			budget = k.Budget
		}
		return []string{k.Name, timeCell(k.CreatedAt), status, scopes, timePtrCell(k.ExpiresAt),
			timePtrCell(k.LastUsedAt), oneLine(rate), oneLine(budget), oneLine(strings.Join(labels, ","))}
	})
}

// timePtrCell is timeCell for an optional time.
func timePtrCell(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return timeCell(*t)
}

func writeDeadLetters(w io.Writer, f format, dls []client.DeadLetter) error {
	return render(w, f, dls, []string{"ID", "APP", "FUNCTION", "TOPIC", "ATTEMPTS", "TIME", "ERROR"}, func(d client.DeadLetter) []string {
		return []string{strconv.FormatUint(d.ID, 10), d.App, d.Function, d.Topic, strconv.Itoa(d.Attempts), timeCell(d.Time), oneLine(d.Error)}
	})
}

// artifactJSON is how `aegis build -o json` shows an artifact; build.Artifact
// itself carries no JSON names because it is not a wire type.
type artifactJSON struct {
	Function string `json:"function"`
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
}

func writeArtifacts(w io.Writer, f format, arts []build.Artifact) error {
	if f == formatJSON {
		out := make([]artifactJSON, len(arts))
		for i, a := range arts {
			out[i] = artifactJSON(a)
		}
		return writeJSON(w, out)
	}
	return render(w, f, arts, []string{"FUNCTION", "SIZE", "SHA256", "PATH"}, func(a build.Artifact) []string {
		return []string{a.Function, strconv.FormatInt(a.Size, 10), short(a.SHA256), a.Path}
	})
}

// writeLogRecord writes one record as a line of text: time, level,
// app/function, message, then the attributes that explain a denial or a
// failure (leadAttrs, in that order), the others sorted as key=value, and
// the request id last, where the eye looks for it when following a request.
func writeLogRecord(w io.Writer, f format, r client.LogRecord) error {
	if f == formatJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var b strings.Builder
	b.WriteString(r.Time.In(displayZone).Format("2006-01-02 15:04:05.000"))
	fmt.Fprintf(&b, " %-5s", r.Level)
	if r.App != "" || r.Function != "" {
		b.WriteString(" " + r.App)
		if r.Function != "" {
			b.WriteString("/" + r.Function)
		}
	}
	b.WriteString(" " + r.Msg)
	for _, k := range leadAttrs {
		if v, ok := r.Attrs[k]; ok {
			fmt.Fprintf(&b, " %s=%s", k, attrValue(v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Attrs)) {
		if !slices.Contains(leadAttrs, k) && !slices.Contains(traceAttrs, k) {
			fmt.Fprintf(&b, " %s=%s", k, attrValue(r.Attrs[k]))
		}
	}
	if r.RequestID != "" {
		b.WriteString(" request_id=" + r.RequestID)
	}
	// The trace id last, and only when it is not the request id (as it is
	// for every request that came without a traceparent); span ids are for
	// `aegis trace` and -o json.
	if t, ok := r.Attrs["trace_id"].(string); ok && t != r.RequestID {
		b.WriteString(" trace_id=" + t)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// leadAttrs come right after the message, in this order: what was refused
// and why (capability denied), why an invocation failed and how.
var leadAttrs = []string{"capability", "resource", "reason", "error"}

// traceAttrs are left out of the text line but for a trace id unlike the
// request id.
var traceAttrs = []string{"trace_id", "span_id", "parent_id"}

// attrValue shows strings bare unless they need quoting, other values as JSON.
func attrValue(v any) string {
	if s, ok := v.(string); ok {
		if s == "" || strings.ContainsAny(s, " \t\n\"=") {
			return strconv.Quote(s)
		}
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// triggerString is a one-line summary of a trigger for tables.
func triggerString(t manifest.Trigger) string {
	switch {
	case t.HTTP != nil:
		s := "http " + t.HTTP.Method + " " + t.HTTP.Path
		if t.HTTP.Public {
			s += " (public)"
		}
		return s
	case t.Event != nil:
		return "event " + t.Event.Topic
	case t.Object != nil:
		s := "object " + t.Object.Prefix
		if len(t.Object.Operations) > 0 {
			s += " (" + strings.Join(t.Object.Operations, ",") + ")"
		}
		return s
	case t.Schedule != nil:
		return "schedule " + t.Schedule.Cron
	}
	return "?"
}

// short abbreviates a digest for tables, like git does; -o json has it whole.
func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return orDash(sum)
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(displayZone).Format("2006-01-02 15:04:05")
}

// displayZone is the zone tables and log lines show times in: the
// machine's. A variable of our own, so tests can pin it without touching
// time.Local, which every goroutine of the process reads.
var displayZone = time.Local

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line whatever an error message holds.
func oneLine(s string) string {
	return orDash(strings.Join(strings.Fields(s), " "))
}
