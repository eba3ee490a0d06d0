package server

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/gate"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/scan"
	"github.com/aegis-platform/aegis/manifest"
)

// Gate configures the server's deploy gate (docs/scan.md).
type Gate struct {
	// FailOn is the severity at or above which a finding the deploy did
	// not accept refuses it: critical (the default, ""), high, medium,
	// low, info, or none (nothing refuses; findings are still reported).
	FailOn string
	// VulnDB is the OSV database the dependencies Go modules record are
	// looked up in: a directory or an http(s) URL; "" checks none.
	VulnDB string
}

func (g Gate) level() (scan.Severity, error) {
	if g.FailOn == "" {
		return scan.Critical, nil
	}
	return scan.ParseSeverity(g.FailOn)
}

// deployGate is the server's half of the deploy gate: the checks that
// need no sources, over the manifest, schema files and modules a deploy
// carries.
type deployGate struct {
	modules *jetstream.ObjectStore
	level   scan.Severity
	vulndb  string
}

func (g *deployGate) Level() scan.Severity { return g.level }

// Check parses the deploy's manifest and reads its modules, then runs the
// gate. A manifest that does not parse, or a module the server does not
// have, yields no finding: the registry refuses those with its own,
// clearer errors.
func (g *deployGate) Check(ctx context.Context, app string, req *adminapi.DeployRequest) ([]scan.Finding, error) {
	file := req.File
	if file == "" {
		file = "aegis.yaml"
	}
	m, pos, err := manifest.ParseWithPositions(file, []byte(req.Manifest))
	if err != nil {
		return nil, nil
	}
	sa := &scan.App{ManifestFile: path.Base(file), ManifestText: []byte(req.Manifest), Manifest: m, Positions: pos,
		Schemas: map[string][]byte{}, Modules: map[string][]byte{}}
	for name, text := range req.Schemas {
		sa.Schemas[name] = []byte(text)
	}
	for fn, sum := range req.Modules {
		if _, ok := m.Functions[fn]; !ok {
			continue
		}
		b, err := g.modules.Get(ctx, sum)
		if errors.Is(err, aegis.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read module of %s: %w", fn, err)
		}
		sa.Modules[fn] = b
	}
	res, err := gate.Deployed(ctx, sa, gate.Options{VulnDB: g.vulndb})
	if err != nil {
		return nil, err
	}
	return res.Findings, nil
}
