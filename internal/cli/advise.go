package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/manifest"
)

// adviseFormat is the value of `aegis advise -o`: text (a YAML block to
// paste, the reasons as comments) or json.
type adviseFormat string

func (f *adviseFormat) String() string { return string(*f) }
func (f *adviseFormat) Type() string   { return "format" }
func (f *adviseFormat) Set(s string) error {
	switch s {
	case "text", "json":
		*f = adviseFormat(s)
		return nil
	}
	return fmt.Errorf("must be text or json")
}

// adviseCommand is `aegis advise APP`: narrower grants from what each
// function was seen to use.
func (c *cli) adviseCommand() *cobra.Command {
	out := adviseFormat("text")
	cmd := &cobra.Command{
		Use:   "advise APP",
		Short: "Advise narrower grants from what each function actually used",
		Long: "Compares each function's grants in the app's active version with what the call graph saw it\n" +
			"use (the grants used, the tables, object folders, topics and hosts reached under them) or,\n" +
			"for a function never seen running, with the host functions its module imports, and prints\n" +
			"a narrower grants block per function to paste into aegis.yaml, each change's reason as a\n" +
			"comment. Advice from observations is only as good as the traffic seen: a path no request\n" +
			"took yet would be refused once its grant is gone (docs/advise.md).",
		Example: "  aegis advise travel-diary\n  aegis advise travel-diary -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			adv, err := ac.Advice(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("advise %s: %w", args[0], err)
			}
			if out == "json" {
				adv.Functions = nonNil(adv.Functions)
				return writeJSON(c.stdout, adv)
			}
			return writeAdviceText(c.stdout, adv)
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: text or json")
	return cmd
}

// writeAdviceText writes the advice as YAML: one key per function holding
// its advised grants block, what it rests on and why each grant changed in
// comments above it. The whole parses as a map of function to {grants}.
func writeAdviceText(w io.Writer, adv *client.Advice) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Least-privilege advice for %s, version %d (docs/advise.md).\n", adv.App, adv.Version)
	b.WriteString("# Paste a function's grants block over its own in aegis.yaml. Advice from observations is only\n" +
		"# as good as the traffic seen: a path no request took yet is refused once its grant is gone.\n")
	if adv.Note != "" {
		comment(&b, "note: "+adv.Note)
	}
	for _, fa := range adv.Functions {
		b.WriteString("\n")
		comment(&b, fa.Function+": "+evidenceLine(fa))
		for _, ch := range fa.Changes {
			comment(&b, "  "+changeLine(ch))
		}
		if len(fa.Changes) == 0 {
			comment(&b, "  no change")
		}
		for _, n := range fa.Notes {
			comment(&b, "  note: "+n)
		}
		block, err := grantsYAML(fa.Advised)
		if err != nil {
			return fmt.Errorf("write advice for %s: %w", fa.Function, err)
		}
		key, err := yaml.Marshal(fa.Function)
		if err != nil {
			return fmt.Errorf("write advice for %s: %w", fa.Function, err)
		}
		fmt.Fprintf(&b, "%s:\n  grants:", strings.TrimSpace(string(key)))
		if block == "" {
			b.WriteString(" {}\n")
			continue
		}
		b.WriteString("\n")
		for _, line := range strings.SplitAfter(strings.TrimSuffix(block, "\n"), "\n") {
			b.WriteString("    " + line)
		}
		b.WriteString("\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

func evidenceLine(fa client.FunctionAdvice) string {
	switch fa.Evidence {
	case client.EvidenceObserved:
		return fmt.Sprintf("evidence: observed, %d invocation(s) seen", fa.Invocations)
	case client.EvidenceImports:
		return "evidence: the module's imports (never seen running): " + strings.Join(fa.Imports, ", ")
	}
	return "evidence: none (never seen running, module unknown)"
}

func changeLine(ch client.GrantChange) string {
	to := ""
	if len(ch.To) > 0 {
		to = " → " + strings.Join(ch.To, ", ")
	}
	return fmt.Sprintf("%s %s %q%s: %s", ch.Action, ch.Field, ch.Grant, to, ch.Reason)
}

// comment writes s as a YAML comment line; line breaks in it
// cannot end the comment.
func comment(b *bytes.Buffer, s string) {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	b.WriteString("# " + s + "\n")
}

// grantsYAML marshals g with the manifest's YAML tags, leaving out the
// kinds that grant nothing: "" when g grants nothing at all.
func grantsYAML(g manifest.Grants) (string, error) {
	var n yaml.Node
	if err := n.Encode(g); err != nil {
		return "", err
	}
	prune(&n)
	if len(n.Content) == 0 {
		return "", nil
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}

// prune drops the keys of a mapping whose values are empty mappings or
// sequences, depth first.
func prune(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return
	}
	var kept []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		prune(v)
		if (v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode) && len(v.Content) == 0 {
			continue
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
}
