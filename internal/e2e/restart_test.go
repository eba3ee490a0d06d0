package e2e

import (
	"context"
	"os"
	"testing"
)

func TestRestartKeepsAppsKeysAndData(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, dir)
	deployProbe(t, first, "testdata/probe.yaml")
	k, err := first.admin.CreateKey(context.Background(), "durable")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := probe(t, first.gateway, k.Key, "probe", "kv-put", map[string]any{"table": "allowed", "key": "kept", "value": "v"}); !o.OK {
		t.Fatal(o.Error)
	}
	if o, _ := probe(t, first.gateway, k.Key, "probe", "obj-put", map[string]any{"key": "ok/kept.txt", "value": "blob"}); !o.OK {
		t.Fatal(o.Error)
	}
	token := first.srv.AdminToken()
	info, err := os.Stat(dir + "/admin.token")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v mode %v", err, info.Mode())
	}
	first.close(t)

	second := startServer(t, dir)
	defer second.close(t)
	if second.srv.AdminToken() != token {
		t.Errorf("admin token changed across restart")
	}
	if st, body, _ := call(t, second.gateway, "POST", "/probe/echo", k.Key, []byte("again")); st != 200 || string(body) != "again" {
		t.Fatalf("after restart: %d %s", st, body)
	}
	if o, _ := probe(t, second.gateway, k.Key, "probe", "kv-get", map[string]any{"table": "allowed", "key": "kept"}); o.Value != "v" {
		t.Errorf("kv after restart: %+v", o)
	}
	if o, _ := probe(t, second.gateway, k.Key, "probe", "obj-get", map[string]any{"key": "ok/kept.txt"}); o.Value != "blob" {
		t.Errorf("object after restart: %+v", o)
	}
	apps, err := second.admin.Apps(context.Background())
	if err != nil || len(apps) != 1 || apps[0].App != "probe" {
		t.Fatalf("apps after restart: %v %v", apps, err)
	}
	for _, l := range first.logs.Lines() {
		for _, v := range l {
			if s, ok := v.(string); ok && (s == token || s == k.Key) {
				t.Fatalf("a secret reached the log: %v", l)
			}
		}
	}
}
