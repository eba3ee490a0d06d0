package manifest

import (
	"strconv"
	"strings"

	"github.com/aegis-platform/aegis"
)

// Error is one problem in a manifest. File and Line are empty when the
// manifest did not come from a file (for example when it was read back from
// JSON); Field is the dotted path of the offending field, such as
// "functions.save-entry.triggers[0].http.path".
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// Error formats the problem as "file:line: field: message", leaving out the
// parts that are unknown, so editors and terminals can jump to the line.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports every manifest problem as aegis.ErrInvalidArgument, so the admin
// API can map a bad manifest to 400 without knowing this package's types.
func (e *Error) Is(target error) bool { return target == aegis.ErrInvalidArgument }

// Errors is every problem found in one manifest, in file order. Parse
// returns all of them at once so a user can fix a manifest in one pass.
type Errors []*Error

// Error joins the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each problem to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}
