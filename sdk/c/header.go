// Package csdk carries the C SDK's header, aegis.h, so the aegis binary
// can write it next to a new C function (`aegis new c`). The header is the
// SDK: it declares the host functions of docs/abi.md and small helpers.
package csdk

import _ "embed"

// Header is aegis.h, byte for byte.
//
//go:embed aegis.h
var Header []byte
