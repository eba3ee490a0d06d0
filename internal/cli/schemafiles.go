package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/aegis-platform/aegis/manifest"
)

// readSchemas reads the schema files a manifest names, and the files those
// reach by a relative $ref, from the manifest's directory, for the deploy
// to carry: the server never reads the caller's file system. Files are
// opened through an os.Root, so neither ".." nor a symbolic link can make
// a schema read something outside the directory. Limits are those the
// server enforces (manifest.MaxSchemaFiles, manifest.MaxSchemaFileSize),
// checked here so that a deploy fails before any module is uploaded.
// A file the manifest names that cannot be read is reported at the
// manifest line naming it (pos).
func readSchemas(manifestPath string, m *manifest.Manifest, pos *manifest.Positions) (map[string]string, error) {
	queue := m.SchemaFiles()
	if len(queue) == 0 {
		return nil, nil
	}
	namedBy := map[string]string{} // file -> the first field naming it
	for _, sf := range m.SchemaFields() {
		if _, ok := namedBy[sf.File]; !ok {
			namedBy[sf.File] = sf.Field
		}
	}
	root, err := os.OpenRoot(filepath.Dir(manifestPath))
	if err != nil {
		return nil, fmt.Errorf("read schema files: %w", err)
	}
	defer root.Close()
	named := len(queue) // the first ones come from the manifest
	out := map[string]string{}
	for i := 0; i < len(queue); i++ {
		name := queue[i]
		if _, ok := out[name]; ok {
			continue
		}
		data, err := readSchemaFile(root, name)
		if err != nil {
			// A $ref found by looking at the JSON may not be a reference
			// at all (a "$ref" key inside an example, say): a file that
			// does not exist is left for the server to miss, if it
			// really is one.
			if i >= named && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if field, ok := namedBy[name]; ok && i < named {
				return nil, pos.Errorf(field, "schema file %s: %s", name, err)
			}
			return nil, fmt.Errorf("schema file %s: %w", name, err)
		}
		if len(out) == manifest.MaxSchemaFiles {
			return nil, fmt.Errorf("schema files: more than %d (counting the files reached by $ref)", manifest.MaxSchemaFiles)
		}
		out[name] = string(data)
		queue = append(queue, localRefs(name, data)...)
	}
	return out, nil
}

func readSchemaFile(root *os.Root, name string) ([]byte, error) {
	if err := manifest.CheckSchemaFile(name); err != nil {
		return nil, err
	}
	f, err := root.Open(filepath.FromSlash(name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, notFoundError{root.Name()}
	case err != nil && strings.Contains(err.Error(), "escapes from parent"):
		// os.Root's refusal of a symbolic link (or "..") leading out.
		return nil, fmt.Errorf("leads outside %s (a symbolic link?); schema files must be inside the manifest's directory", root.Name())
	case errors.Is(err, fs.ErrPermission):
		return nil, errors.New("permission denied")
	case err != nil:
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, manifest.MaxSchemaFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > manifest.MaxSchemaFileSize {
		return nil, fmt.Errorf("larger than %d bytes", manifest.MaxSchemaFileSize)
	}
	return data, nil
}

// localRefs lists the schema files that the "$ref" and "$dynamicRef"
// values of a schema name relative to it, resolved as the server resolves
// them. References with a scheme, a host or an absolute path are not
// files next to the manifest; the server refuses them, so they are not
// followed. A file that is not JSON has none (the server says why).
func localRefs(name string, data []byte) []string {
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return nil
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && (k == "$ref" || k == "$dynamicRef") {
					if ref, ok := localRef(name, s); ok {
						out = append(out, ref)
					}
					continue
				}
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}

func localRef(from, ref string) (string, bool) {
	ref, _, _ = strings.Cut(ref, "#")
	if ref == "" {
		return "", false // within the same file
	}
	u, err := url.Parse(ref)
	if err != nil || u.Scheme != "" || u.Host != "" || u.RawQuery != "" || strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	resolved := path.Join(path.Dir(from), u.Path)
	if manifest.CheckSchemaFile(resolved) != nil {
		return "", false
	}
	return resolved, true
}

// notFoundError is a schema file missing from the manifest's directory; it
// is fs.ErrNotExist without the generic text.
type notFoundError struct{ dir string }

func (e notFoundError) Error() string        { return "not found in " + e.dir }
func (e notFoundError) Is(target error) bool { return target == fs.ErrNotExist }
