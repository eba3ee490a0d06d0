// Package doccmds finds the aegis command lines the documentation shows
// (README.md, docs/*.md, examples/*/README.md), for the tests that check
// they parse and run as written. Only lines in fenced code blocks count;
// output lines ("aegis: …") and file names ("aegis.yaml") are left out.
package doccmds

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Command is one documented command line.
type Command struct {
	File string // relative to the repository root
	Line int
	Text string // the aegis part of the line, as written (a trailing comment removed)
	// Args are the words after "aegis", quotes removed; nil for a
	// synopsis line (alternatives "a | b", optional "[…]", placeholders).
	Args []string
	// Stdin is what an "echo 'X' | aegis …" line pipes in.
	Stdin string
	// Piped says the line sends aegis's output on to another program.
	Piped bool
	// ShowsFailure says the output the docs print after the line has an
	// error of aegis's ("aegis: …"): the line illustrates a failure.
	ShowsFailure bool
}

// Synopsis reports whether the line describes a command's shape rather
// than a command to run.
func (c Command) Synopsis() bool { return c.Args == nil }

func (c Command) String() string { return fmt.Sprintf("%s:%d: %s", c.File, c.Line, c.Text) }

// Files are the documents read, relative to the repository root.
func Files(root string) ([]string, error) {
	files := []string{"README.md"}
	for _, pattern := range []string{"docs/*.md", "examples/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return nil, err
		}
		for _, f := range m {
			rel, err := filepath.Rel(root, f)
			if err != nil {
				return nil, err
			}
			files = append(files, filepath.ToSlash(rel))
		}
	}
	slices.Sort(files[1:])
	return files, nil
}

var (
	aegisStart  = regexp.MustCompile(`^(?:go run \./cmd/aegis|aegis)(?:\s|$)`)
	echoPipe    = regexp.MustCompile(`^echo\s+('[^']*'|"[^"]*")\s*\|\s*`)
	describedAt = regexp.MustCompile(`\s{3,}`)
	placeholder = regexp.MustCompile(`^[A-Z][A-Z0-9_]*(?:[=,][A-Z0-9_,]*)?$`)
)

// Extract returns every documented aegis command line under root.
func Extract(root string) ([]Command, error) {
	files, err := Files(root)
	if err != nil {
		return nil, err
	}
	var out []Command
	for _, file := range files {
		cmds, err := extractFile(root, file)
		if err != nil {
			return nil, err
		}
		out = append(out, cmds...)
	}
	return out, nil
}

func extractFile(root, file string) ([]Command, error) {
	f, err := os.Open(filepath.Join(root, file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out     []Command
		inBlock bool
		pending string // a line continued with a backslash
		start   int
		last    *Command // the block's latest command, whose output follows
		// codeBlock: the block is fenced as source code (sourceLanguages)
		codeBlock bool
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "```") {
			inBlock = !inBlock
			// A block of source code is not a shell session: a Go
			// import line `aegis "…/sdk/go"` is no command.
			codeBlock = inBlock && sourceLanguages[strings.TrimPrefix(t, "```")]
			pending = ""
			last = nil
			continue
		}
		if !inBlock || codeBlock {
			continue
		}
		if pending != "" {
			line = pending + " " + strings.TrimSpace(line)
		} else {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		pending = ""
		trimmed := strings.TrimSpace(line)
		if c, ok := parseLine(trimmed); ok {
			c.File, c.Line = file, start
			out = append(out, c)
			last = &out[len(out)-1]
			continue
		}
		// aegis prints an error as "aegis: VERB …"; other output lines
		// that start with "aegis: " ("aegis: gateway on …") are not one.
		if last != nil && len(last.Args) > 0 && strings.HasPrefix(trimmed, "aegis: "+verb(last.Args)+" ") {
			last.ShowsFailure = true
		}
	}
	return out, sc.Err()
}

// sourceLanguages are the fence languages of blocks that hold source code
// or configuration, never a command line.
var sourceLanguages = map[string]bool{
	"go": true, "c": true, "rust": true, "js": true, "javascript": true, "ts": true, "typescript": true,
	"json": true, "yaml": true, "toml": true, "wit": true,
}

// Parse reads one command line, as a code block or a --help Example shows
// it; false when it is not an aegis command.
func Parse(line string) (Command, bool) { return parseLine(line) }

// verb is the first word of args that is not a global flag or its value.
func verb(args []string) string {
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--data" || args[i] == "--otp":
			i++
		case strings.HasPrefix(args[i], "-"):
		default:
			return args[i]
		}
	}
	return ""
}

// parseLine reads one line of a code block; false when it is not an aegis
// command.
func parseLine(line string) (Command, bool) {
	line = strings.TrimPrefix(line, "$ ")
	var c Command
	if m := echoPipe.FindStringSubmatch(line); m != nil {
		c.Stdin = m[1][1:len(m[1])-1] + "\n"
		line = line[len(m[0]):]
	}
	if !aegisStart.MatchString(line) {
		return Command{}, false
	}
	line = strings.TrimSpace(strings.TrimPrefix(line, "go run ./cmd/aegis"))
	line = strings.TrimSpace(strings.TrimPrefix(line, "aegis"))
	// A synopsis block describes each command after a run of spaces.
	if loc := describedAt.FindStringIndex(line); loc != nil {
		line = line[:loc[0]]
	}
	words, comment, err := split(line)
	if err != nil {
		return Command{}, false
	}
	c.Text = strings.TrimSpace(strings.TrimSuffix("aegis "+line, comment))
	for i, w := range words {
		if w.raw == "|" {
			if i+1 < len(words) && !placeholder.MatchString(words[i+1].raw) && !strings.HasPrefix(words[i+1].raw, "-") &&
				!slices.ContainsFunc(words[:i], func(w word) bool { return w.raw == "[" }) && !isCommandWord(words[i+1].raw) {
				// "aegis logs -o json | jq …": the rest is another program.
				c.Piped = true
				words = words[:i]
				break
			}
		}
	}
	synopsis := false
	for _, w := range words {
		if w.quoted {
			continue
		}
		if w.raw == "|" || strings.ContainsAny(w.raw, "[]") || strings.HasSuffix(w.raw, "...") || placeholder.MatchString(w.raw) || strings.Contains(w.raw, "|") {
			synopsis = true
		}
	}
	if !synopsis {
		c.Args = []string{}
		for _, w := range words {
			c.Args = append(c.Args, w.text)
		}
	} else {
		// A synopsis keeps its command words, for the command to be found.
		c.Args = nil
	}
	return c, true
}

// isCommandWord: lower-case words after "|" in a synopsis ("list | delete
// APP") are alternatives, not another program; programs the docs pipe
// into are named here.
func isCommandWord(w string) bool {
	return !slices.Contains([]string{"jq", "grep", "head", "tail", "less"}, w)
}

// SynopsisCommands returns the commands a synopsis line names (one per
// alternative: "apps list | delete APP" names "apps list" and "apps
// delete") and the flags it shows.
func SynopsisCommands(text string) (commands [][]string, flags []string) {
	words, _, _ := split(strings.TrimSpace(strings.TrimPrefix(text, "aegis")))
	var segments [][]word
	cur := []word{}
	for _, w := range words {
		if w.raw == "|" {
			segments = append(segments, cur)
			cur = []word{}
			continue
		}
		cur = append(cur, w)
	}
	segments = append(segments, cur)
	var parent []string
	for i, seg := range segments {
		var path []string
		for _, w := range seg {
			part := strings.Trim(w.raw, "[].")
			if strings.HasPrefix(part, "-") {
				for alt := range strings.SplitSeq(part, "|") {
					name, _, _ := strings.Cut(alt, "=")
					if strings.HasPrefix(name, "-") {
						flags = append(flags, name)
					}
				}
				continue
			}
			if len(path) == len(commandWords(seg)) {
				continue
			}
			path = append(path, part)
		}
		if i == 0 {
			commands = append(commands, path)
			if len(path) > 0 {
				parent = path[:len(path)-1]
			}
			continue
		}
		commands = append(commands, append(slices.Clone(parent), path...))
	}
	return commands, flags
}

// commandWords are the leading words of a segment that name a command:
// lower case, not flags, options or placeholders. A word holding "|"
// ("go|c") ends them: it is an argument with alternatives.
func commandWords(seg []word) []string {
	var out []string
	for _, w := range seg {
		if w.quoted || strings.HasPrefix(w.raw, "-") || strings.ContainsAny(w.raw, "[]|.") || placeholder.MatchString(w.raw) || w.raw != strings.ToLower(w.raw) {
			break
		}
		out = append(out, w.raw)
	}
	return out
}

type word struct {
	raw    string // as written
	text   string // quotes removed
	quoted bool
}

// split splits a command line into words like a POSIX shell without
// expansions, and returns the trailing comment (from an unquoted " #").
func split(line string) ([]word, string, error) {
	var (
		words []word
		cur   strings.Builder
		raw   strings.Builder
		in    bool
		quote rune
		q     bool
	)
	flush := func() {
		if in {
			words = append(words, word{raw: raw.String(), text: cur.String(), quoted: q})
		}
		cur.Reset()
		raw.Reset()
		in, q = false, false
	}
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
			raw.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in, q = r, true, true
			raw.WriteRune(r)
		case r == '#' && !in:
			flush()
			return words, line[i:], nil
		case r == ' ' || r == '\t':
			flush()
		default:
			in = true
			cur.WriteRune(r)
			raw.WriteRune(r)
		}
	}
	if quote != 0 {
		return nil, "", errors.New("unterminated quote")
	}
	flush()
	return words, "", nil
}
