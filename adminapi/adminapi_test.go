package adminapi

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/manifest"
)

// TestWire pins every body to the bytes docs/admin-api.md describes and
// clients of other versions read: field names, their order, and which are
// left out when empty. A change here is a change of the admin API; update
// the docs with it. Each body also decodes back to the value it came from,
// so no field is written under one name and read under another.
func TestWire(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	tests := []struct {
		name string
		v    any // a pointer, so decoding can fill a new value of its type
		want string
	}{
		{"Health", &Health{Status: "ok"}, `{"status":"ok"}`},
		{"StoredModule", &StoredModule{SHA256: "ab12"}, `{"sha256":"ab12"}`},
		{"ClusterStatus", &ClusterStatus{MetaLeader: "aegis-1", Servers: []ClusterServer{{Name: "aegis-0",
			Address: "http://10.0.0.5:8080", Admin: "http://10.0.0.5:8081", Version: "v1.2.3", Health: ServerOK,
			StartedAt: &t0, LastSeen: &t1}}},
			`{"servers":[{"name":"aegis-0","address":"http://10.0.0.5:8080","admin":"http://10.0.0.5:8081","version":"v1.2.3",` +
				`"health":"ok","started_at":"2025-01-02T03:04:05Z","last_seen":"2025-01-02T04:04:05Z"}],"meta_leader":"aegis-1"}`},
		{"ClusterStatus, incomplete", &ClusterStatus{Servers: []ClusterServer{{Name: "aegis-0", Health: ServerDegraded}}, Incomplete: true},
			`{"servers":[{"name":"aegis-0","address":"","admin":"","version":"","health":"degraded"}],"meta_leader":"","incomplete":true}`},

		{"DeployRequest", &DeployRequest{Manifest: "app: shop\n", File: "aegis.yaml",
			Modules: map[string]string{"pay": "ab12"}, Schemas: map[string]string{"s.json": "{}"}},
			`{"manifest":"app: shop\n","file":"aegis.yaml","modules":{"pay":"ab12"},"schemas":{"s.json":"{}"}}`},
		{"DeployRequest without schemas", &DeployRequest{Manifest: "m", File: "f", Modules: map[string]string{}},
			`{"manifest":"m","file":"f","modules":{}}`},

		{"App", &App{App: "shop", Version: "v3", Functions: []string{"pay", "refund"}, DeployedAt: t0},
			`{"app":"shop","version":"v3","functions":["pay","refund"],"deployed_at":"2025-01-02T03:04:05Z"}`},
		{"App unchanged", &App{App: "shop", Version: "v3", Functions: []string{"pay"}, DeployedAt: t0, Unchanged: true},
			`{"app":"shop","version":"v3","functions":["pay"],"deployed_at":"2025-01-02T03:04:05Z","unchanged":true}`},
		{"RollbackRequest", &RollbackRequest{To: 2}, `{"to":2}`},
		{"RollbackRequest to the previous version", &RollbackRequest{}, `{}`},
		{"BackupRequest", &BackupRequest{BackupKey: []byte{1, 2, 3}}, `{"backup_key":"AQID"}`},
		{"BackupRequest without a backup key", &BackupRequest{}, `{}`},
		{"Version", &Version{Version: "v2", Number: 2, Active: true, CreatedAt: t0, File: "aegis.yaml", Modules: map[string]string{"pay": "ab12"}},
			`{"version":"v2","number":2,"active":true,"created_at":"2025-01-02T03:04:05Z","file":"aegis.yaml","modules":{"pay":"ab12"}}`},
		{"Function", &Function{App: "shop", Function: "pay", Version: "v3", SHA256: "ab12",
			Triggers:  []manifest.Trigger{{HTTP: &manifest.HTTPTrigger{Method: "POST", Path: "/pay", Auth: []string{"api-key"}}}},
			Isolation: "pooled", Grants: manifest.Grants{KV: manifest.ReadWrite{Write: []string{"orders"}}}, Limits: manifest.Limits{Concurrency: 4}},
			`{"app":"shop","function":"pay","version":"v3","sha256":"ab12","triggers":[{"http":{"method":"POST","path":"/pay","auth":["api-key"]}}],"isolation":"pooled",` +
				`"grants":{"kv":{"write":["orders"]},"objects":{},"events":{},"egress":{}},"limits":{"concurrency":4}}`},
		{"Route", &Route{Method: "GET", Path: "/ping", App: "shop", Function: "ping", Public: true, Auth: []string{}},
			`{"method":"GET","path":"/ping","app":"shop","function":"ping","public":true,"auth":[]}`},
		{"private Route", &Route{Method: "POST", Path: "/in", App: "shop", Function: "in", Private: true, Auth: []string{"api-key"}},
			`{"method":"POST","path":"/in","app":"shop","function":"in","public":false,"private":true,"auth":["api-key"]}`},

		{"CreateKeyRequest", &CreateKeyRequest{Name: "ci", Scopes: []string{"shop", "shop/pay"}, ExpiresIn: "720h",
			Labels: map[string]string{"owner": "ops"}},
			`{"name":"ci","scopes":["shop","shop/pay"],"expires_in":"720h","labels":{"owner":"ops"}}`},
		{"CreateKeyRequest, name only", &CreateKeyRequest{Name: "ci"}, `{"name":"ci"}`},
		{"CreateKeyRequest with limits", &CreateKeyRequest{Name: "ci", Rate: "10/s", Burst: "20", Budget: "1000/day"},
			`{"name":"ci","rate":"10/s","burst":"20","budget":"1000/day"}`},
		{"Key with limits", &Key{Name: "ci", CreatedAt: t0, Rate: "10/s", Burst: "10", Budget: "1000/day"},
			`{"name":"ci","created_at":"2025-01-02T03:04:05Z","revoked":false,"rate":"10/s","burst":"10","budget":"1000/day"}`},
		{"RotateKeyRequest", &RotateKeyRequest{Overlap: "24h0m0s"}, `{"overlap":"24h0m0s"}`},
		{"NewKey", &NewKey{Name: "ci", Key: "aegis_x"}, `{"name":"ci","key":"aegis_x"}`},
		{"Key", &Key{Name: "ci", CreatedAt: t0, Revoked: true, RevokedAt: &t1, Scopes: []string{"shop"},
			ExpiresAt: &t1, Expired: true, Labels: map[string]string{"owner": "ops"}, LastUsedAt: &t0,
			Previous: &KeyGeneration{CreatedAt: t0, ExpiresAt: &t1, LastUsedAt: &t0}},
			`{"name":"ci","created_at":"2025-01-02T03:04:05Z","revoked":true,"revoked_at":"2025-01-02T04:04:05Z",` +
				`"scopes":["shop"],"expires_at":"2025-01-02T04:04:05Z","expired":true,"labels":{"owner":"ops"},` +
				`"last_used_at":"2025-01-02T03:04:05Z","previous":{"created_at":"2025-01-02T03:04:05Z",` +
				`"expires_at":"2025-01-02T04:04:05Z","last_used_at":"2025-01-02T03:04:05Z"}}`},
		{"Key, empty fields left out", &Key{Name: "ci", CreatedAt: t0},
			`{"name":"ci","created_at":"2025-01-02T03:04:05Z","revoked":false}`},
		{"KeyGeneration, empty fields left out", &KeyGeneration{CreatedAt: t0},
			`{"created_at":"2025-01-02T03:04:05Z"}`},

		{"WebhookSecret", &WebhookSecret{App: "shop", Name: "stripe", Secret: "c2Vj"},
			`{"app":"shop","name":"stripe","secret":"c2Vj"}`},

		{"DeadLetter", &DeadLetter{ID: 7, App: "shop", Function: "mail", Topic: "orders", Error: "function failed",
			Attempts: 5, RequestID: "4bf9", Time: t0},
			`{"id":7,"app":"shop","function":"mail","topic":"orders","error":"function failed","attempts":5,` +
				`"request_id":"4bf9","time":"2025-01-02T03:04:05Z"}`},
		{"ReplayedDeadLetter", &ReplayedDeadLetter{ID: 7}, `{"id":7}`},

		{"CreateAdminTokenRequest", &CreateAdminTokenRequest{Name: "ci", Role: "deployer", Apps: []string{"shop"}},
			`{"name":"ci","role":"deployer","apps":["shop"]}`},
		{"CreateAdminTokenRequest for every app", &CreateAdminTokenRequest{Name: "ops", Role: "admin"},
			`{"name":"ops","role":"admin"}`},
		{"NewAdminToken", &NewAdminToken{Name: "ci", Role: "deployer", Apps: []string{"shop"}, Token: "aegisadm_x"},
			`{"name":"ci","role":"deployer","apps":["shop"],"token":"aegisadm_x"}`},
		{"NewAdminToken for every app", &NewAdminToken{Name: "ops", Role: "admin", Token: "aegisadm_y"},
			`{"name":"ops","role":"admin","token":"aegisadm_y"}`},
		{"AdminToken", &AdminToken{Name: "ci", Role: "deployer", Apps: []string{"shop"}, CreatedAt: t0, Revoked: true,
			RevokedAt: &t1, LastUsedAt: &t0},
			`{"name":"ci","role":"deployer","apps":["shop"],"created_at":"2025-01-02T03:04:05Z","revoked":true,` +
				`"revoked_at":"2025-01-02T04:04:05Z","last_used_at":"2025-01-02T03:04:05Z"}`},
		{"AdminToken, empty fields left out", &AdminToken{Name: "ops", Role: "admin", CreatedAt: t0},
			`{"name":"ops","role":"admin","created_at":"2025-01-02T03:04:05Z","revoked":false}`},

		{"MFAStatus", &MFAStatus{Enrolled: true, EnrolledAt: &t0, StepUp: "auto", Required: true},
			`{"enrolled":true,"enrolled_at":"2025-01-02T03:04:05Z","pending":false,"step_up":"auto","required":true}`},
		{"MFAStatus, not enrolled", &MFAStatus{Pending: true, StepUp: "off"},
			`{"enrolled":false,"pending":true,"step_up":"off","required":false}`},
		{"MFAEnrollment", &MFAEnrollment{URI: "otpauth://totp/Aegis:admin?secret=X"},
			`{"uri":"otpauth://totp/Aegis:admin?secret=X"}`},
		{"MFAConfirmRequest", &MFAConfirmRequest{Code: "123456"}, `{"code":"123456"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("encoded\n got %s\nwant %s", got, tt.want)
			}
			back := reflect.New(reflect.TypeOf(tt.v).Elem())
			if err := json.Unmarshal(got, back.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Interface(), tt.v) {
				t.Fatalf("decoded %+v, want %+v", back.Elem(), reflect.ValueOf(tt.v).Elem())
			}
		})
	}
}
