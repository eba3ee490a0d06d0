package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/vault"
)

// TestAsyncInvocationsSurviveTheAcceptingServer: asynchronous invocations
// accepted by a server killed while they run all finish "done", run to
// completion by the survivor, each exactly once.
func TestAsyncInvocationsSurviveTheAcceptingServer(t *testing.T) {
	// The survivor hosts the NATS both use, and runs one invocation at a
	// time: most of them are taken by the server that accepts them.
	survivor := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.Backpressure = server.Backpressure{Async: 1, AsyncPerCaller: 1, AsyncPerFunction: 1}
	})
	defer survivor.close(t)
	// Deployed before the second server starts, which restores it.
	deployProbe(t, survivor, "testdata/probe.yaml")
	key, err := survivor.admin.CreateKey(context.Background(), "durable")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	shareKeys(t, survivor, dir)
	doomed := startServerWith(t, dir, func(c *server.Config) { shareNATS(c, survivor) })

	const n = 6
	ids, reqIDs := make([]string, n), map[string]bool{}
	for i := range n {
		id, reqID := asyncCall(t, doomed.gateway, "POST", "/probe/sleep", key.Key, map[string]any{"size": 1500})
		ids[i], reqIDs[reqID] = id, true
	}
	// Most are running on the doomed server (the survivor takes one at a
	// time, and holds one more), none has finished its 1.5 s.
	eventually(t, 5*time.Second, "the doomed server running the invocations", func() bool {
		return len(doomed.logs.Lines(`"msg":"queued invocation taken"`)) >= n/2
	})
	doomed.srv.Kill()
	killed := time.Now()

	for _, id := range ids {
		eventually(t, 60*time.Second, "the result of "+id+" on the survivor", func() bool {
			st, body, _ := call(t, survivor.gateway, "GET", "/_aegis/invocations/"+id, key.Key, nil)
			if st != http.StatusOK {
				t.Fatalf("result %s: %d %s", id, st, body)
			}
			var res struct {
				Status   string
				Error    string
				Response struct{ Body []byte }
			}
			if err := json.Unmarshal(body, &res); err != nil {
				t.Fatal(err)
			}
			if res.Status == "failed" {
				t.Fatalf("invocation %s failed: %s", id, res.Error)
			}
			if res.Status == "done" && string(res.Response.Body) != "rested" {
				t.Fatalf("invocation %s answered %q", id, res.Response.Body)
			}
			return res.Status == "done"
		})
	}
	t.Logf("all %d done %s after the kill", n, time.Since(killed).Round(time.Millisecond))

	// One completed run each: the function log holds one invocation
	// record per request id (a run cut short by the kill wrote none). The
	// records are written after the results, without waiting: wait for
	// every one, then for any second one a little longer.
	runs := func() map[string]int {
		seen := map[string]int{}
		err := survivor.admin.Logs(context.Background(), client.LogQuery{App: "probe", Function: "probe", Limit: 2000}, func(r client.LogRecord) error {
			if reqIDs[r.RequestID] && (r.Msg == "invocation" || r.Msg == "invocation failed") {
				seen[r.RequestID]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return seen
	}
	eventually(t, 10*time.Second, "an invocation record of each run", func() bool { return len(runs()) == n })
	time.Sleep(time.Second)
	for reqID, count := range runs() {
		if count != 1 {
			t.Errorf("request %s ran to completion %d times, want once", reqID, count)
		}
	}
	// The survivor took over what the doomed server held: deliveries
	// after the first.
	if len(survivor.logs.Lines(`"msg":"queued invocation taken"`, `"attempt":2`)) == 0 {
		t.Error("no invocation was handed to the survivor after the kill")
	}
}

// shareKeys gives the server about to start in dir the event signing and
// audit keys of first, as servers sharing a NATS without a cluster join
// file must.
func shareKeys(t *testing.T, first *instance, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"events.key", "audit.key"} {
		b, err := os.ReadFile(filepath.Join(first.dataDir, "keys", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "keys", name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQueuedInvocationsWrittenStraightIntoNATS: an invocation written into
// the async queue by whoever holds the NATS credentials (and even the
// master key) but not the event signing key is refused and never run; the
// same invocation signed with the key runs, so nothing else is wrong
// with it.
func TestQueuedInvocationsWrittenStraightIntoNATS(t *testing.T) {
	in := startServer(t, t.TempDir())
	defer in.close(t)
	deployProbe(t, in, "testdata/probe.yaml")
	nc := outsider(t, in)
	ctx := context.Background()
	results, err := nc.Bucket(ctx, "aegis_invocations", jetstream.BucketOptions{History: 1, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	forgedKey := make([]byte, 32)
	_, _ = rand.Read(forgedKey)

	write := func(signingKey []byte) (id, reqID string) {
		id, reqID = telemetry.NewID(), telemetry.NewID()
		rev, err := results.Create(ctx, "inv."+id, []byte(`{"status":"pending","owner":""}`))
		if err != nil {
			t.Fatal(err)
		}
		// The queued invocation's format (gateway/queue.go): the job
		// sealed with the app's data key, bound to app and id, and signed
		// over app, id and the sealed bytes.
		job, _ := json.Marshal(map[string]any{"id": id, "rev": rev, "app": "probe", "function": "open",
			"request": map[string]any{"kind": "http", "request_id": reqID, "method": "GET", "path": "/public/echo",
				"params": map[string]string{"op": "echo"}, "body": []byte("smuggled"), "origin": "public",
				"trace": map[string]string{}}})
		sealed := sealData(t, nc, "probe", []byte("async\x00probe\x00"+id), job)
		h := map[string]string{"Aegis-Invocation": id, "Aegis-Signature": signQueued(signingKey, "probe", id, sealed)}
		if _, err := nc.Publish(ctx, "aegis.async.probe", sealed, h, id); err != nil {
			t.Fatal(err)
		}
		return id, reqID
	}
	status := func(id string) string {
		st, body, _ := call(t, in.gateway, "GET", "/_aegis/invocations/"+id, "", nil)
		var res struct{ Status string }
		if st != http.StatusOK || json.Unmarshal(body, &res) != nil {
			t.Fatalf("result %s: %d %s", id, st, body)
		}
		return res.Status
	}

	forgedID, forgedReq := write(forgedKey)
	eventually(t, 10*time.Second, "the forged invocation refused", func() bool {
		return len(in.logs.Lines(`"msg":"queued invocation refused"`, `"security":true`, `"invocation_id":"`+forgedID+`"`)) == 1
	})
	signedID, signedReq := write(eventKey(t, in))
	eventually(t, 10*time.Second, "the signed invocation run", func() bool { return status(signedID) == "done" })
	if !invoked(t, in, "probe", "open", signedReq) {
		t.Error("the signed invocation left no invocation record")
	}
	if got := status(forgedID); got != "pending" {
		t.Errorf("the forged invocation's record is %q, want it untouched (pending)", got)
	}
	if invoked(t, in, "probe", "open", forgedReq) {
		t.Error("the forged invocation ran")
	}
}

// signQueued is a queued invocation's signature (gateway/queue.go):
// HMAC-SHA256 over a label, app, invocation id and sealed bytes, each
// after its length as 8 bytes, big endian.
func signQueued(key []byte, app, id string, sealed []byte) string {
	m := hmac.New(sha256.New, key)
	for _, f := range [][]byte{[]byte("aegis-async-v1"), []byte(app), []byte(id), sealed} {
		m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(f))))
		m.Write(f)
	}
	return "v1=" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sealData seals data for app bound to ad, as an insider holding the
// master key could.
func sealData(t *testing.T, nc *jetstream.Node, app string, ad, data []byte) []byte {
	t.Helper()
	ctx := context.Background()
	bucket, err := nc.Bucket(ctx, vault.Bucket, jetstream.BucketOptions{History: 1})
	if err != nil {
		t.Fatal(err)
	}
	kek, _, err := vault.LoadMasterKey(vault.MasterKeyOptions{ConfigDir: testConfigDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(ctx, vault.Config{Store: bucket, KMS: kek})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := v.SealData(ctx, app, ad, data)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}
