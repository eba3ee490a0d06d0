// Package rustsdk carries the Rust SDK crate (aegis-sdk: Cargo.toml and
// src/) so the aegis binary can write it beside a new Rust function
// (`aegis new rust`), which then builds offline with a path dependency.
package rustsdk

import "embed"

// Files is the crate: Cargo.toml, src/lib.rs and src/json.rs.
//
//go:embed Cargo.toml src/lib.rs src/json.rs
var Files embed.FS
