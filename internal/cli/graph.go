package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
)

// graphFormat is the value of `aegis graph -o`: text (a table, also
// called table as elsewhere), json or dot (Graphviz).
type graphFormat string

func (f *graphFormat) String() string { return string(*f) }
func (f *graphFormat) Type() string   { return "format" }
func (f *graphFormat) Set(s string) error {
	switch s {
	case "text", "table", "json", "dot":
		*f = graphFormat(s)
		return nil
	}
	return fmt.Errorf("must be text, json or dot")
}

// graphCommand is `aegis graph`: an app's declared edges beside the
// observed ones.
func (c *cli) graphCommand() *cobra.Command {
	var (
		app string
		out = graphFormat("text")
	)
	cmd := &cobra.Command{
		Use:   "graph --app APP",
		Short: "Show an app's call graph: declared edges against observed ones",
		Long: "The edges the app's manifest declares (routes, topics, object prefixes and schedules into\n" +
			"its functions; the tables, objects, topics, functions and hosts its grants name) beside\n" +
			"those seen at run time, with counts and flags: a grant never used (\"grant to narrow\"),\n" +
			"a trigger that never fired, a call the grants refused (\"attempt outside the grants\").\n" +
			"-o dot writes Graphviz: unused declared edges dashed, refused ones red (docs/callgraph.md).",
		Example: "  aegis graph --app travel-diary\n  aegis graph --app travel-diary -o dot",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if app == "" {
				return usagef("--app is required")
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			g, err := ac.Graph(cmd.Context(), app)
			if err != nil {
				return fmt.Errorf("read graph of %s: %w", app, err)
			}
			switch out {
			case "json":
				g.Edges = nonNil(g.Edges)
				return writeJSON(c.stdout, g)
			case "dot":
				return writeGraphDot(c.stdout, g)
			}
			return writeGraphText(c.stdout, g)
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "the app (required)")
	cmd.Flags().VarP(&out, "output", "o", "output format: text, json or dot")
	return cmd
}

func writeGraphText(w io.Writer, g *client.Graph) error {
	header := []string{"KIND", "FROM", "TO", "DECLARED", "OBSERVED", "COUNT", "REFUSED", "LAST SEEN", "FLAGS"}
	rows := make([][]string, 0, len(g.Edges))
	for _, e := range g.Edges {
		last := e.LastSeen
		if e.LastRefused != nil && (last == nil || e.LastRefused.After(*last)) {
			last = e.LastRefused
		}
		rows = append(rows, []string{e.Kind, e.From, e.To, yesNo(e.Declared), yesNo(e.Observed),
			strconv.FormatInt(e.Count, 10), strconv.FormatInt(e.RefusedCount, 10), timePtrCell(last),
			orDash(strings.Join(e.Flags, ", "))})
	}
	if err := writeTable(w, header, rows); err != nil {
		return err
	}
	if g.Dropped > 0 {
		_, err := fmt.Fprintf(w, "\n%d uses of edges past the app's bound were counted but not kept\n", g.Dropped)
		return err
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// writeGraphDot writes g as a Graphviz digraph: one node per (type,
// name), edges labelled with their kind and count; declared edges never
// used are dashed, edges with refusals red, observed edges no grant
// declares bold.
func writeGraphDot(w io.Writer, g *client.Graph) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n\trankdir=LR;\n\tnode [fontname=\"Helvetica\"];\n", dotQuote(g.App))
	shapes := map[string]string{"function": "box", "route": "cds", "topic": "ellipse", "prefix": "folder",
		"schedule": "octagon", "host": "diamond", "table": "cylinder", "objects": "folder",
		"secret": "hexagon"}
	seen := map[string]bool{}
	node := func(typ, name string) string {
		id := typ + ":" + name
		if !seen[id] {
			seen[id] = true
			shape := shapes[typ]
			if shape == "" {
				shape = "ellipse"
			}
			label := name
			if typ != "function" {
				label = typ + "\n" + name
			}
			fmt.Fprintf(&b, "\t%s [label=%s, shape=%s];\n", dotQuote(id), dotQuote(label), shape)
		}
		return dotQuote(id)
	}
	for _, e := range g.Edges {
		from, to := node(e.FromType, e.From), node(e.ToType, e.To)
		label := e.Kind
		if e.Count > 0 {
			label += " ×" + strconv.FormatInt(e.Count, 10)
		}
		var attrs []string
		switch {
		case e.Declared && e.Count == 0:
			attrs = append(attrs, "style=dashed")
		case !e.Declared:
			attrs = append(attrs, "style=bold")
		}
		if e.Refused {
			label += " refused ×" + strconv.FormatInt(e.RefusedCount, 10)
			attrs = append(attrs, "color=red", "fontcolor=red")
		}
		attrs = append([]string{"label=" + dotQuote(label)}, attrs...)
		fmt.Fprintf(&b, "\t%s -> %s [%s];\n", from, to, strings.Join(attrs, ", "))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// dotQuote quotes s as a Graphviz ID: in double quotes, with quotes and
// backslashes escaped and newlines as \n.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")
	return `"` + r.Replace(s) + `"`
}
