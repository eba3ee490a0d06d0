package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/aegis-platform/aegis/client"
)

// isTerminal reports whether r is an interactive terminal. A variable so
// tests can stand in for a person at a keyboard.
var isTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// askStepUp turns a refusal for want of an authenticator code into a
// prompt, when someone is at a terminal to answer it and no code was given:
// it returns the code typed, and whether to run the command again with it.
// Scripts (stdin not a terminal) keep the plain refusal and its exit code.
func (c *cli) askStepUp(err error) (string, bool) {
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, client.ErrStepUpRequired) {
		return "", false
	}
	if c.otpCode() != "" || !isTerminal(c.stdin) {
		return "", false
	}
	fmt.Fprintf(c.stderr, "aegis: %s\nCode shown by the authenticator: ", apiErr.Message)
	code, rerr := readLine(c.stdin)
	if rerr != nil || code == "" {
		return "", false
	}
	return code, true
}
