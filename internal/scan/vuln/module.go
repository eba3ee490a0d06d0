package vuln

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/aegis-platform/aegis/internal/scan"
	"github.com/aegis-platform/aegis/internal/scan/secrets"
)

// CheckModule checks what a built module says of itself: a Go-built
// module's build information (its module versions, looked up in db
// without reachability, which needs the sources), or else its producers
// section, reported as unverifiable. db "" checks no versions.
func CheckModule(ctx context.Context, function string, wasm []byte, db string) ([]scan.Finding, error) {
	data, err := secrets.DataSegments(wasm)
	if err != nil {
		return nil, nil // not a module: the registry refuses it with its own error
	}
	info := goBuildInfo(data)
	if info == nil {
		what := "a module built without Go's build information"
		if p := producers(wasm); p != "" {
			what += " (" + p + ")"
		}
		return []scan.Finding{unverifiable(function, "module:"+function,
			what+": the libraries compiled into it cannot be known, so none is checked for vulnerabilities")}, nil
	}
	if db == "" {
		return nil, nil
	}
	src, err := openDB(db)
	if err != nil {
		return nil, err
	}
	var out []scan.Finding
	for _, dep := range info.Deps {
		mod := dep
		if dep.Replace != nil {
			mod = dep.Replace
		}
		ids, err := src.affecting(ctx, mod.Path, mod.Version)
		if err != nil {
			return nil, err
		}
		for _, e := range ids {
			summary := ""
			if e.Summary != "" {
				summary = ": " + e.Summary
			}
			out = append(out, scan.Finding{ID: e.ID, Rule: RuleVulnerable, Severity: e.severity(), Function: function,
				File: "module:" + function,
				Message: fmt.Sprintf("%s %s, compiled into the module, has %s%s (from the module's build information: whether the vulnerable code is called is not known without the sources)",
					mod.Path, mod.Version, e.ID, summary),
				Fix: rules[0].Fix})
		}
	}
	return out, nil
}

// goBuildInfo finds the module information the Go linker writes into a
// binary: the text runtime/debug.ReadBuildInfo returns, between two
// fixed 16-byte sentinels. The standard library's debug/buildinfo finds
// it in ELF, Mach-O, PE and other executables through a header that a
// wasip1 module does not carry, hence this search of its data.
func goBuildInfo(data []byte) *debug.BuildInfo {
	start := []byte("\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6")
	end := []byte("\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2")
	for off := 0; off < len(data); {
		i := bytes.Index(data[off:], start)
		if i < 0 {
			return nil
		}
		text := data[off+i+len(start):]
		off += i + len(start)
		if !bytes.HasPrefix(text, []byte("path\t")) {
			continue
		}
		j := bytes.Index(text, end)
		if j < 0 || j > 1<<20 {
			return nil
		}
		info, err := debug.ParseBuildInfo(string(text[:j]))
		if err != nil {
			return nil
		}
		return info
	}
	return nil
}

// producers summarizes a module's producers custom section ("language
// C11, processed-by clang 16.0.6"), "" when it has none.
func producers(wasm []byte) string {
	r := bytes.NewReader(wasm[min(8, len(wasm)):])
	for r.Len() > 0 {
		id, err := r.ReadByte()
		if err != nil {
			return ""
		}
		size, err := binary.ReadUvarint(r)
		if err != nil || size > uint64(r.Len()) {
			return ""
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil || id != 0 {
			continue
		}
		b := bytes.NewReader(body)
		name, ok := readName(b)
		if !ok || name != "producers" {
			continue
		}
		var parts []string
		fields, err := binary.ReadUvarint(b)
		for i := uint64(0); err == nil && i < fields && i < 16; i++ {
			field, ok := readName(b)
			if !ok {
				break
			}
			n, err := binary.ReadUvarint(b)
			if err != nil {
				break
			}
			for j := uint64(0); j < n && j < 16; j++ {
				v, ok1 := readName(b)
				ver, ok2 := readName(b)
				if !ok1 || !ok2 {
					break
				}
				parts = append(parts, strings.TrimSpace(field+" "+v+" "+ver))
			}
		}
		return strings.Join(parts, ", ")
	}
	return ""
}

func readName(r *bytes.Reader) (string, bool) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(r.Len()) || n > 256 {
		return "", false
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", false
	}
	return string(b), true
}

// osvDB reads an OSV database in the vuln.go.dev layout: a directory
// (index/modules.json, ID/<id>.json) or a URL (the same, gzipped).
type osvDB struct {
	dir, base string
	modules   []struct {
		Path  string `json:"path"`
		Vulns []struct {
			ID string `json:"id"`
		} `json:"vulns"`
	}
}

// maxDBFile bounds one file read from the database.
const maxDBFile = 64 << 20

func openDB(db string) (*osvDB, error) {
	u, err := dbURL(db)
	if err != nil {
		return nil, err
	}
	d := &osvDB{}
	if rest, ok := strings.CutPrefix(u, "file://"); ok {
		p, err := url.PathUnescape(rest)
		if err != nil {
			return nil, err
		}
		d.dir = filepath.FromSlash(p)
	} else {
		d.base = strings.TrimSuffix(u, "/")
	}
	b, err := d.read(context.Background(), "index/modules")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &d.modules); err != nil {
		return nil, fmt.Errorf("vulnerability database index: %w", err)
	}
	return d, nil
}

func (d *osvDB) read(ctx context.Context, endpoint string) ([]byte, error) {
	if d.dir != "" {
		f, err := os.Open(filepath.Join(d.dir, filepath.FromSlash(endpoint)+".json"))
		if err != nil {
			return nil, fmt.Errorf("vulnerability database: %w", err)
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, maxDBFile))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/"+endpoint+".json.gz", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("vulnerability database: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("vulnerability database: %s: %s", req.URL, resp.Status)
	}
	z, err := gzip.NewReader(io.LimitReader(resp.Body, maxDBFile))
	if err != nil {
		return nil, fmt.Errorf("vulnerability database: %w", err)
	}
	return io.ReadAll(io.LimitReader(z, maxDBFile))
}

// osvEntry is what matching reads of an entry: its affected ranges.
type osvEntry struct {
	entry
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
		Ranges []struct {
			Type   string `json:"type"`
			Events []struct {
				Introduced string `json:"introduced"`
				Fixed      string `json:"fixed"`
			} `json:"events"`
		} `json:"ranges"`
	} `json:"affected"`
}

// affecting returns the entries naming module path at version.
func (d *osvDB) affecting(ctx context.Context, path, version string) ([]*entry, error) {
	var out []*entry
	for _, m := range d.modules {
		if m.Path != path {
			continue
		}
		for _, v := range m.Vulns {
			if strings.ContainsAny(v.ID, "/\\.") {
				continue
			}
			b, err := d.read(ctx, "ID/"+v.ID)
			if err != nil {
				return nil, err
			}
			var e osvEntry
			if err := json.Unmarshal(b, &e); err != nil {
				return nil, fmt.Errorf("vulnerability database entry %s: %w", v.ID, err)
			}
			if e.affects(path, version) {
				out = append(out, &e.entry)
			}
		}
	}
	return out, nil
}

func (e *osvEntry) affects(path, version string) bool {
	if !semver.IsValid(version) {
		return false
	}
	for _, a := range e.Affected {
		if a.Package.Name != path {
			continue
		}
		for _, r := range a.Ranges {
			if r.Type != "SEMVER" {
				continue
			}
			// Events in order: affected from an introduced up to the next
			// fixed.
			in := false
			for _, ev := range r.Events {
				if ev.Introduced != "" && semver.Compare(version, "v"+strings.TrimPrefix(ev.Introduced, "v")) >= 0 || ev.Introduced == "0" {
					in = true
				}
				if ev.Fixed != "" && semver.Compare(version, "v"+strings.TrimPrefix(ev.Fixed, "v")) >= 0 {
					in = false
				}
			}
			if in {
				return true
			}
		}
	}
	return false
}
