//go:build !wasip1

package aegis

import "embed"

// Source holds this SDK's own files. The aegis binary embeds them and hands
// them to the Go toolchain as a module (its internal/sdkproxy), so that a
// function builds in any directory, offline, with the SDK of the binary
// that deploys it. Functions have no use for it, and it is not in their
// modules: builds for wasip1 leave this file out.
//
//go:embed *.go go.mod
var Source embed.FS
