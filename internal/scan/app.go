package scan

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aegis-platform/aegis/manifest"
)

// App is what the checks look at: one app's manifest and, when it is
// scanned from its directory (aegis scan, aegis deploy), where its files
// are. On the server, which receives a deploy's manifest, schema files and
// modules but no sources, Dir is "" and Sources empty.
type App struct {
	// Dir is the manifest's directory, absolute; "" on the server.
	Dir string
	// ManifestFile is the manifest's name relative to Dir ("aegis.yaml"),
	// what findings in it name as their File.
	ManifestFile string
	ManifestText []byte
	// Manifest is as parsed, defaults not applied: a rule must tell a
	// limit the author wrote from one Aegis filled in.
	Manifest  *manifest.Manifest
	Positions *manifest.Positions
	// Sources maps each function to its source, absolute: a directory (a
	// Go package, C sources) or a .wasm file. Empty on the server.
	Sources map[string]string
	// Schemas maps each schema file the manifest names (its name as
	// written, relative to Dir) to its text.
	Schemas map[string][]byte
	// Modules maps each function to its built module, when there is one
	// (the server always has them; aegis deploy after building).
	Modules map[string][]byte
}

// LoadApp reads the app whose manifest is at manifestPath: the manifest,
// its schema files and where each function's source is. It builds nothing.
func LoadApp(manifestPath string) (*App, error) {
	m, pos, err := manifest.LoadWithPositions(manifestPath)
	if err != nil {
		return nil, err
	}
	text, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", manifestPath, err)
	}
	dir, err := filepath.Abs(filepath.Dir(manifestPath))
	if err != nil {
		return nil, err
	}
	app := &App{Dir: dir, ManifestFile: filepath.ToSlash(filepath.Base(manifestPath)), ManifestText: text,
		Manifest: m, Positions: pos, Sources: map[string]string{}, Schemas: map[string][]byte{}}
	for _, name := range m.FunctionNames() {
		app.Sources[name] = filepath.Join(dir, filepath.FromSlash(m.Functions[name].Source))
	}
	// A schema file that cannot be read is left out: the scan has nothing
	// of it to check, and a deploy refuses it with an error pointing at
	// the manifest line that names it.
	for _, s := range m.SchemaFiles() {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s)))
		if err != nil {
			continue
		}
		app.Schemas[s] = b
	}
	return app, nil
}

// Rel is path relative to the app's directory, with slashes: what a
// finding names as its File. A path outside the directory is returned as
// it is.
func (a *App) Rel(path string) string {
	if a.Dir == "" {
		return filepath.ToSlash(path)
	}
	rel, err := filepath.Rel(a.Dir, path)
	if err != nil || rel == ".." || len(rel) > 2 && rel[:3] == "../" {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(rel)
}
