package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"slices"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/manifest"
)

// upSecrets gives every secret the manifest grants that the app does not
// have yet a fresh random value, and says which. A deploy refuses grants
// of secrets that do not exist; `aegis up` is the development loop, which
// must come up in one command on a fresh machine, and a random value is
// what a new webhook token or signing key would be anyway. The value is
// shown nowhere: the developer sets the real one with `aegis secrets set`.
func upSecrets(ctx context.Context, ac *client.Client, manifestPath, dataDir string, w io.Writer) error {
	m, err := manifest.Load(manifestPath)
	if err != nil {
		return err
	}
	var granted []string
	for _, f := range m.Functions {
		granted = append(granted, f.Grants.Secrets...)
	}
	if len(granted) == 0 {
		return nil
	}
	slices.Sort(granted)
	granted = slices.Compact(granted)
	have, err := ac.Secrets(ctx, m.App)
	if err != nil {
		return fmt.Errorf("list the secrets of %s: %w", m.App, err)
	}
	for _, name := range granted {
		if slices.ContainsFunc(have, func(s client.Secret) bool { return s.Name == name }) {
			continue
		}
		if _, err := ac.SetSecret(ctx, m.App, name, []byte(rand.Text())); err != nil {
			return fmt.Errorf("set secret %s of %s: %w", name, m.App, err)
		}
		fmt.Fprintf(w, "secret %s of %s was not set: it now holds a random value (set yours with: aegis --data %s secrets set %s %s)\n",
			name, m.App, shellQuote(dataDir), m.App, name)
	}
	return nil
}
