package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
)

// traceCommand is `aegis trace ID`: one trace's invocations as a tree.
func (c *cli) traceCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:   "trace TRACE-ID",
		Short: "Show a trace: every invocation a request or schedule caused, as a tree",
		Long: "A trace follows one request (or schedule run) through every function it reached:\n" +
			"events, object changes and invoke calls, with their outcome, duration, retries and\n" +
			"the lines each logged. TRACE-ID is a response's X-Aegis-Trace-Id (for a request\n" +
			"without a traceparent, its X-Request-Id) or the trace id of the traceparent sent.",
		Example: "  aegis trace 4bf92f3577b34da6a3ce929d0e0e4736\n  aegis trace 4bf92f3577b34da6a3ce929d0e0e4736 -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !isTraceID(args[0]) {
				return usagef("a trace id is 32 lower-case hex characters, not %q", args[0])
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			t, err := ac.Trace(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("trace %s: %w", args[0], err)
			}
			return writeTrace(c.stdout, out, t)
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

func isTraceID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

func writeTrace(w io.Writer, f format, t *client.Trace) error {
	if f == formatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(t)
	}
	fmt.Fprintf(w, "trace %s: %d invocation%s, %s, %s\n", t.TraceID, t.Spans, plural(t.Spans), millis(t.DurationMS), t.Outcome)
	for i, n := range t.Children {
		writeTraceNode(w, n, "", i == len(t.Children)-1)
	}
	return nil
}

// writeTraceNode prints one invocation and, indented below it, its lines
// and the invocations it caused.
func writeTraceNode(w io.Writer, n *client.TraceNode, indent string, last bool) {
	branch, next := "├─ ", "│  "
	if last {
		branch, next = "└─ ", "   "
	}
	var b strings.Builder
	b.WriteString(indent + branch + n.App + "/" + n.Function)
	if n.Version != "" {
		b.WriteString("@" + n.Version)
	}
	b.WriteString("  " + n.Trigger)
	if n.Attempt > 1 {
		b.WriteString(" (attempt " + strconv.Itoa(n.Attempt) + ")")
	}
	b.WriteString("  " + n.Outcome)
	if n.Status != 0 {
		b.WriteString(" " + strconv.Itoa(n.Status))
	}
	b.WriteString("  " + millis(n.DurationMS))
	b.WriteString("  " + n.Start.In(displayZone).Format("15:04:05.000"))
	if n.Error != "" {
		b.WriteString("  error=" + strconv.Quote(n.Error))
	}
	fmt.Fprintln(w, b.String())
	for _, l := range n.Logs {
		line := indent + next + "  · " + l.Level + " " + l.Msg
		if l.Capability != "" {
			line += " capability=" + l.Capability + " resource=" + strconv.Quote(l.Resource) + " reason=" + strconv.Quote(l.Reason)
		}
		fmt.Fprintln(w, line)
	}
	for i, c := range n.Children {
		writeTraceNode(w, c, indent+next, i == len(n.Children)-1)
	}
}

func millis(ms float64) string {
	return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// sinceFlag reads --since as a duration back from now ("10m") or an RFC
// 3339 time.
type sinceFlag struct{ t time.Time }

func (s *sinceFlag) String() string {
	if s.t.IsZero() {
		return ""
	}
	return s.t.Format(time.RFC3339)
}

func (s *sinceFlag) Set(v string) error {
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return fmt.Errorf("a duration back from now must be positive, such as 10m")
		}
		s.t = time.Now().Add(-d)
		return nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("want a duration such as 10m or an RFC 3339 time")
	}
	s.t = t
	return nil
}

func (s *sinceFlag) Type() string { return "duration|time" }
