package clusterjoin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
)

func TestCreateAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster.join")
	if err := Create(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", info.Mode(), err)
	}
	m, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.EventKey) != 32 || len(m.MasterKey) != 32 || len(m.AuditKey) != 32 || m.AdminToken == "" || len(m.RoutePassword) < 32 || len(m.NATSSeed) == 0 {
		t.Fatalf("material %+v", m)
	}
	// Never replaced: a second init would split the cluster.
	if err := Create(path, time.Now()); !errors.Is(err, aegis.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	// Two files never share a key.
	other := filepath.Join(t.TempDir(), "other.join")
	if err := Create(other, time.Now()); err != nil {
		t.Fatal(err)
	}
	m2, _ := Read(other)
	if string(m2.EventKey) == string(m.EventKey) || m2.AdminToken == m.AdminToken || string(m2.NATSSeed) == string(m.NATSSeed) {
		t.Fatal("two files share material")
	}
	// Readable by others: refused.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); !errors.Is(err, aegis.ErrInvalidArgument) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("0644: %v", err)
	}
}

func TestDecodeRefusesAndNeverQuotes(t *testing.T) {
	f, err := New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good := `{"format":"aegis-cluster-join","version":1,"created":"2026-12-04T00:00:00Z","event_key":"` + f.EventKey +
		`","admin_token":"` + f.AdminToken + `","master_key":"` + f.MasterKey + `","audit_key":"` + f.AuditKey + `","nats_seed":"` + f.NATSSeed +
		`","route_password":"` + f.RoutePassword + `"}`
	if _, err := Decode([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"not json":      "hello",
		"unknown field": strings.Replace(good, `"version":1`, `"version":1,"extra":1`, 1),
		"other version": strings.Replace(good, `"version":1`, `"version":2`, 1),
		"short key":     strings.Replace(good, f.EventKey, "c2hvcnQ", 1),
		"bad seed":      strings.Replace(good, f.NATSSeed, "SUXXXX", 1),
		"bad password":  strings.Replace(good, f.RoutePassword, "pw", 1),
	} {
		_, err := Decode([]byte(bad))
		if !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, secret := range []string{f.EventKey, f.AdminToken, f.MasterKey, f.NATSSeed, f.RoutePassword} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error quotes a secret: %v", name, err)
			}
		}
	}
}
