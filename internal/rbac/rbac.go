// Package rbac owns who may do what on the admin API: the roles an admin
// token carries (viewer, operator, deployer, admin), the permission every
// admin call needs, the app set that narrows a token to some apps, the
// step-up mode, and which changes are dangerous enough to need a second
// factor (DangerousChanges). It is pure: no storage, no HTTP, no logging.
// Tokens themselves (hashes, revocation) and the TOTP authenticator are
// package auth's; package admin puts the two together per request.
package rbac

import (
	"fmt"
	"slices"
	"strings"
)

// Role is what an admin token may do. Roles are ordered: each one may do
// everything the one before it may.
type Role string

// The roles, weakest first.
const (
	RoleViewer   Role = "viewer"   // read: apps, functions, routes, keys, logs, dead letters
	RoleOperator Role = "operator" // viewer + invoke, replay dead letters, roll back, lift guard blocks, apply guard rules
	RoleDeployer Role = "deployer" // operator + upload modules, deploy, webhook secrets, delete apps
	RoleAdmin    Role = "admin"    // everything: API keys, admin tokens, the authenticator
)

// Roles lists every role, weakest first.
var Roles = []Role{RoleViewer, RoleOperator, RoleDeployer, RoleAdmin}

// ParseRole accepts the name of a role exactly as listed in Roles.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles, r) {
		return "", fmt.Errorf("unknown role %q (use one of viewer, operator, deployer, admin)", s)
	}
	return r, nil
}

// rank orders roles; an unknown role ranks below viewer and may do nothing,
// so a damaged record fails closed.
func (r Role) rank() int { return slices.Index(Roles, r) }

// Permission is one thing an admin call does. Its text completes "role X may
// not …" in a refusal, so it reads as a verb phrase.
type Permission string

// The permissions of the admin API.
const (
	Read                 Permission = "read apps, functions, routes, keys, logs or dead letters"
	Invoke               Permission = "invoke functions"
	ReplayDeadLetters    Permission = "replay dead letters"
	Rollback             Permission = "roll back"
	UploadModules        Permission = "upload modules"
	Deploy               Permission = "deploy"
	CreateWebhookSecrets Permission = "create webhook secrets"
	DeleteApps           Permission = "delete apps"
	ManageKeys           Permission = "manage api keys"
	ManageTokens         Permission = "manage admin tokens"
	ManageMFA            Permission = "enroll authenticators"
	ReadAudit            Permission = "read the audit log"
	ManageSecrets        Permission = "manage secrets"
	TakeBackups          Permission = "take backups"
	LiftGuardBlocks      Permission = "lift guard blocks"
	ApplyGuardRules      Permission = "apply guard rules"
)

// minRole is the weakest role holding each permission. Every permission
// must be here: one that is not is granted to nobody.
var minRole = map[Permission]Role{
	Read:                 RoleViewer,
	Invoke:               RoleOperator,
	ReplayDeadLetters:    RoleOperator,
	Rollback:             RoleOperator,
	ReadAudit:            RoleOperator,
	LiftGuardBlocks:      RoleOperator,
	ApplyGuardRules:      RoleOperator,
	UploadModules:        RoleDeployer,
	Deploy:               RoleDeployer,
	CreateWebhookSecrets: RoleDeployer,
	ManageSecrets:        RoleDeployer,
	DeleteApps:           RoleDeployer,
	ManageKeys:           RoleAdmin,
	ManageTokens:         RoleAdmin,
	ManageMFA:            RoleAdmin,
	TakeBackups:          RoleAdmin,
}

// Permissions lists every permission, for documentation and tests.
func Permissions() []Permission {
	out := make([]Permission, 0, len(minRole))
	for p := range minRole {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Permission) int {
		if d := minRole[a].rank() - minRole[b].rank(); d != 0 {
			return d
		}
		return strings.Compare(string(a), string(b))
	})
	return out
}

// Has reports whether role r holds permission p.
func (r Role) Has(p Permission) bool {
	need, ok := minRole[p]
	return ok && r.rank() >= 0 && r.rank() >= need.rank()
}

// Scope says what an admin call acts on, which decides how a token's app
// set applies to it.
type Scope int

// The scopes of admin calls.
const (
	// ScopeApp: the call names one app (the {app} of its path); a token
	// with an app set must list it.
	ScopeApp Scope = iota + 1
	// ScopeList: the call lists things of many apps; a token with an app
	// set sees only its apps' (the handler filters).
	ScopeList
	// ScopeAnyApp: the call concerns no app in particular and holds
	// nothing of one, such as a content-addressed module upload; the app
	// set does not narrow it.
	ScopeAnyApp
	// ScopePlatform: the call concerns the whole platform (API keys, admin
	// tokens, the authenticator); it needs a token without an app set.
	ScopePlatform
)

// MaxApps bounds a token's app set.
const MaxApps = 32

// RootName is the name of the bootstrap principal, the token in
// DATA/admin.token. Admin tokens may not take it, so a name in the
// security log always means one principal.
const RootName = "root"

// Principal is who made an admin call: a named token, its role and the apps
// it is limited to (none: all apps).
type Principal struct {
	Name string
	Role Role
	Apps []string // sorted; empty means every app
}

// Root is the bootstrap principal: role admin on every app.
func Root() *Principal { return &Principal{Name: RootName, Role: RoleAdmin} }

// Restricted reports whether the principal is limited to an app set.
func (p *Principal) Restricted() bool { return len(p.Apps) > 0 }

// CanSee reports whether the principal may act on (and see) app.
func (p *Principal) CanSee(app string) bool {
	return !p.Restricted() || slices.Contains(p.Apps, app)
}

// Denied is a refused authorization. Msg is for the caller (it names the
// role and the permission, nothing secret); Reason is a short word for the
// security log.
type Denied struct {
	Msg    string
	Reason string
	// CodeMissing: the call would go through with a current authenticator
	// code; a client may ask its user for one and try again.
	CodeMissing bool
}

func (d *Denied) Error() string { return d.Msg }

// Reasons a call is denied, for the security log.
const (
	ReasonRole     = "role"
	ReasonAppSet   = "app set"
	ReasonPlatform = "platform call with an app set"
)

// Authorize decides whether the principal may do perm on app (the app the
// call names; "" when it names none) for a call of the given scope. It
// returns nil or a *Denied.
func (p *Principal) Authorize(perm Permission, scope Scope, app string) error {
	if !p.Role.Has(perm) {
		return &Denied{Msg: fmt.Sprintf("forbidden: role %s may not %s", p.Role, perm), Reason: ReasonRole}
	}
	switch scope {
	case ScopeApp:
		if !p.CanSee(app) {
			return &Denied{Msg: fmt.Sprintf("forbidden: token %s may not act on app %q", p.Name, app), Reason: ReasonAppSet}
		}
	case ScopeList, ScopeAnyApp:
	case ScopePlatform:
		if p.Restricted() {
			return &Denied{Msg: fmt.Sprintf("forbidden: token %s is limited to some apps and may not %s", p.Name, perm), Reason: ReasonPlatform}
		}
	default:
		// A route declared without a scope is a programming error; refuse
		// rather than guess.
		return &Denied{Msg: "forbidden", Reason: "undeclared scope"}
	}
	return nil
}

// StepUpMode says when a dangerous change needs a current TOTP code.
type StepUpMode string

// The step-up modes.
const (
	// StepUpAuto: required once an authenticator is enrolled (the default).
	StepUpAuto StepUpMode = "auto"
	// StepUpAlways: required; without an enrolled authenticator dangerous
	// changes are refused until one is.
	StepUpAlways StepUpMode = "always"
	// StepUpOff: never asked for.
	StepUpOff StepUpMode = "off"
)

// ParseStepUpMode accepts auto, always and off; "" is auto.
func ParseStepUpMode(s string) (StepUpMode, error) {
	switch m := StepUpMode(s); m {
	case "":
		return StepUpAuto, nil
	case StepUpAuto, StepUpAlways, StepUpOff:
		return m, nil
	}
	return "", fmt.Errorf("unknown step-up mode %q (use auto, always or off)", s)
}
