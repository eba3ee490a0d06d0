// Command aegis is the Aegis command line; see docs/cli.md.
package main

import (
	"context"
	"os"

	"github.com/aegis-platform/aegis/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
