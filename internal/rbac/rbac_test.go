package rbac

import (
	"errors"
	"strings"
	"testing"
)

// The role table of docs/admin-api.md: every role against every permission.
func TestRolePermissions(t *testing.T) {
	want := map[Permission][]Role{
		Read:                 {RoleViewer, RoleOperator, RoleDeployer, RoleAdmin},
		Invoke:               {RoleOperator, RoleDeployer, RoleAdmin},
		ReplayDeadLetters:    {RoleOperator, RoleDeployer, RoleAdmin},
		Rollback:             {RoleOperator, RoleDeployer, RoleAdmin},
		ReadAudit:            {RoleOperator, RoleDeployer, RoleAdmin},
		LiftGuardBlocks:      {RoleOperator, RoleDeployer, RoleAdmin},
		ApplyGuardRules:      {RoleOperator, RoleDeployer, RoleAdmin},
		UploadModules:        {RoleDeployer, RoleAdmin},
		Deploy:               {RoleDeployer, RoleAdmin},
		CreateWebhookSecrets: {RoleDeployer, RoleAdmin},
		ManageSecrets:        {RoleDeployer, RoleAdmin},
		DeleteApps:           {RoleDeployer, RoleAdmin},
		ManageKeys:           {RoleAdmin},
		ManageTokens:         {RoleAdmin},
		ManageMFA:            {RoleAdmin},
		TakeBackups:          {RoleAdmin},
	}
	if got := len(Permissions()); got != len(want) {
		t.Fatalf("%d permissions, the table has %d: add the new one here and to docs/admin-api.md", got, len(want))
	}
	for _, p := range Permissions() {
		holders, ok := want[p]
		if !ok {
			t.Errorf("permission %q is not in the table", p)
			continue
		}
		for _, r := range Roles {
			if got, exp := r.Has(p), contains(holders, r); got != exp {
				t.Errorf("%s.Has(%q) = %v, want %v", r, p, got, exp)
			}
		}
	}
	for _, r := range []Role{"", "root", "Admin"} {
		if r.Has(Read) {
			t.Errorf("unknown role %q holds a permission", r)
		}
	}
	if Role("admin").Has("made up") {
		t.Error("admin holds a permission that does not exist")
	}
}

func contains(rs []Role, r Role) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func TestParseRole(t *testing.T) {
	for _, s := range []string{"viewer", "operator", "deployer", "admin"} {
		if r, err := ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Admin", "root", "superuser"} {
		if _, err := ParseRole(s); err == nil {
			t.Errorf("ParseRole(%q) accepted", s)
		}
	}
}

func TestAuthorize(t *testing.T) {
	viewer := &Principal{Name: "v", Role: RoleViewer}
	deployerX := &Principal{Name: "dx", Role: RoleDeployer, Apps: []string{"x"}}
	adminX := &Principal{Name: "ax", Role: RoleAdmin, Apps: []string{"x"}}
	tests := []struct {
		name   string
		p      *Principal
		perm   Permission
		scope  Scope
		app    string
		reason string // "" allowed
		msg    string
	}{
		{"viewer reads", viewer, Read, ScopeList, "", "", ""},
		{"viewer deploys", viewer, Deploy, ScopeApp, "x", ReasonRole, "forbidden: role viewer may not deploy"},
		{"root does anything", Root(), ManageTokens, ScopePlatform, "", "", ""},
		{"deployer on its app", deployerX, Deploy, ScopeApp, "x", "", ""},
		{"deployer on another app", deployerX, Deploy, ScopeApp, "y", ReasonAppSet, `forbidden: token dx may not act on app "y"`},
		{"deployer uploads modules of any app", deployerX, UploadModules, ScopeAnyApp, "", "", ""},
		{"restricted lists", deployerX, Read, ScopeList, "", "", ""},
		{"restricted admin manages keys", adminX, ManageKeys, ScopePlatform, "", ReasonPlatform, "limited to some apps"},
		{"restricted admin deletes its app", adminX, DeleteApps, ScopeApp, "x", "", ""},
		{"deployer manages tokens", deployerX, ManageTokens, ScopePlatform, "", ReasonRole, "role deployer may not manage admin tokens"},
		{"undeclared scope", Root(), Read, 0, "", "undeclared scope", "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Authorize(tt.perm, tt.scope, tt.app)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var d *Denied
			if !errors.As(err, &d) {
				t.Fatalf("err = %v, want *Denied", err)
			}
			if d.Reason != tt.reason || !strings.Contains(d.Msg, tt.msg) {
				t.Errorf("denied %q (%s), want %q (%s)", d.Msg, d.Reason, tt.msg, tt.reason)
			}
		})
	}
}

func TestCanSee(t *testing.T) {
	all := &Principal{Role: RoleViewer}
	some := &Principal{Role: RoleViewer, Apps: []string{"a", "b"}}
	for app, want := range map[string][2]bool{"a": {true, true}, "b": {true, true}, "c": {true, false}, "": {true, false}} {
		if all.CanSee(app) != want[0] || some.CanSee(app) != want[1] {
			t.Errorf("CanSee(%q): unrestricted %v, restricted %v; want %v", app, all.CanSee(app), some.CanSee(app), want)
		}
	}
}

func TestParseStepUpMode(t *testing.T) {
	for in, want := range map[string]StepUpMode{"": StepUpAuto, "auto": StepUpAuto, "always": StepUpAlways, "off": StepUpOff} {
		if got, err := ParseStepUpMode(in); err != nil || got != want {
			t.Errorf("ParseStepUpMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseStepUpMode("sometimes"); err == nil {
		t.Error("ParseStepUpMode accepted sometimes")
	}
}
