// Package aegisplatform carries the WIT package aegis:platform
// (platform.wit): the platform's capabilities a WebAssembly component may
// import. The aegis binary writes it beside the WASI packages when it
// builds a JavaScript function into a component (`aegis build`,
// internal/build), so no copy is needed on disk.
package aegisplatform

import _ "embed"

// WIT is platform.wit, the package aegis:platform at Version.
//
//go:embed platform.wit
var WIT []byte

// Version is the package's version, as platform.wit declares it; a world
// includes aegis:platform/function@Version.
const Version = "0.1.0"
