package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/cli"
)

// aegisCLI runs the real CLI in-process against in.
func aegisCLI(t *testing.T, in *instance, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"AEGIS_URL": in.srv.AdminURL(), "AEGIS_TOKEN": in.srv.AdminToken()}
	code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func samplePNG(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestTravelDiary runs the Figure 1 scenario: saving an entry with an image
// triggers a thumbnail, which triggers indexing, each function holding only
// its own grants. Deploy and key creation go through the CLI.
func TestTravelDiary(t *testing.T) {
	in, _ := sharedServer(t)
	deployTravelDiary(t, in)
	code, out, errs := aegisCLI(t, in, "keys", "create", "diary", "-o", "json")
	if code != 0 {
		t.Fatalf("aegis keys create: %d %s", code, errs)
	}
	var k struct{ Name, Key string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.Key == "" {
		t.Fatalf("keys create -o json: %q", out)
	}
	checkTravelDiary(t, in, k.Key)
}

// checkTravelDiary runs the diary's scenario against a server where the
// example is deployed and key is the API key named "diary": an upload goes
// through the whole chain, refusals answer as documented, and the usage
// of the chain is charged to the key.
func checkTravelDiary(t *testing.T, in *instance, key string) {
	t.Helper()
	k := struct{ Key string }{key}
	entry := map[string]string{"title": "Lisbon", "text": "Trams and tiles.", "image": base64.StdEncoding.EncodeToString(samplePNG(t, 640, 480))}
	st, body, _ := call(t, in.gateway, "POST", "/entries", k.Key, entry)
	if st != 201 {
		t.Fatalf("POST /entries: %d %s", st, body)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(body, &created)
	if created.ID == "" {
		t.Fatalf("no id: %s", body)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/entries", "", entry); st != 401 {
		t.Errorf("POST /entries without a key: %d", st)
	}
	// The manifest's body schema answers before save-entry runs.
	if st, body, _ := call(t, in.gateway, "POST", "/entries", k.Key, map[string]string{"title": "x"}); st != 400 ||
		!strings.Contains(string(body), "body.image: required") {
		t.Errorf("entry without image: %d %s", st, body)
	}
	if st, body, _ := call(t, in.gateway, "POST", "/entries", k.Key, "title=x", "Content-Type", "application/x-www-form-urlencoded"); st != 415 {
		t.Errorf("form-encoded entry: %d %s", st, body)
	}
	// The first request `aegis up` prints sends the body schema's example:
	// it must create an entry as it is.
	schema, err := os.ReadFile("../../examples/travel-diary/schemas/new-entry.json")
	if err != nil {
		t.Fatal(err)
	}
	var withExamples struct{ Examples []json.RawMessage }
	if err := json.Unmarshal(schema, &withExamples); err != nil || len(withExamples.Examples) == 0 {
		t.Fatalf("new-entry.json has no example: %v", err)
	}
	if st, body, _ := call(t, in.gateway, "POST", "/entries", k.Key, string(withExamples.Examples[0])); st != 201 {
		t.Errorf("POST /entries with the schema's example: %d %s", st, body)
	}

	var got map[string]any
	eventually(t, 30*time.Second, "the thumbnail to be indexed", func() bool {
		st, body, _ := call(t, in.gateway, "GET", "/entries/"+created.ID, k.Key, nil)
		if st == http.StatusServiceUnavailable {
			return false // a cluster's stream electing a leader: retried
		}
		if st != 200 {
			t.Fatalf("GET entry: %d %s", st, body)
		}
		got = nil
		_ = json.Unmarshal(body, &got)
		return got["thumbnail"] != nil
	})
	if got["title"] != "Lisbon" || got["text"] != "Trams and tiles." {
		t.Errorf("entry: %v", got)
	}
	// notify told the webhook receiver, with the bearer token from the
	// vault, the entry as idempotency key.
	eventually(t, 30*time.Second, "the webhook to hear of the entry", func() bool {
		return len(diaryHook(t).received(created.ID)) > 0
	})
	for _, r := range diaryHook(t).received(created.ID) {
		if r.Path != "/diary" || r.Authorization != "Bearer "+diaryNotifyToken ||
			!strings.Contains(r.Body, `"event":"thumbnail.created"`) || !strings.Contains(r.Body, created.ID) {
			t.Errorf("webhook request: %+v", r)
		}
	}
	// A 503 is what a request gets while a stream of a cluster elects a
	// leader (docs/cluster.md, "Failure modes"), and is to be retried.
	var thumb []byte
	var hdr http.Header
	eventually(t, 20*time.Second, "the thumbnail to be served (not 503)", func() bool {
		st, thumb, hdr = call(t, in.gateway, "GET", "/entries/"+created.ID+"/thumbnail", k.Key, nil)
		return st != http.StatusServiceUnavailable
	})
	if st != 200 || hdr.Get("Content-Type") != "image/png" {
		t.Fatalf("thumbnail: %d %s", st, hdr.Get("Content-Type"))
	}
	img, err := png.Decode(bytes.NewReader(thumb))
	if err != nil {
		t.Fatalf("thumbnail is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() > 128 || b.Dy() > 128 || b.Dx() < 100 {
		t.Errorf("thumbnail is %dx%d, want to fit 128x128 keeping aspect", b.Dx(), b.Dy())
	}
	// The whole chain the upload caused, the thumbnail made from its event
	// and the index entry made from the thumbnail's, is charged to the key
	// that uploaded.
	eventually(t, 10*time.Second, "the chain's usage charged to the uploading key", func() bool {
		code, out, errs := aegisCLI(t, in, "usage", "--app", "travel-diary", "-o", "json")
		if code != 0 {
			t.Fatalf("aegis usage: exit %d %s", code, errs)
		}
		var rows []struct {
			App, Function, Caller string
			Invocations           int64
			GBSeconds             float64 `json:"gb_seconds"`
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("aegis usage -o json: %v: %s", err, out)
		}
		charged := map[string]bool{}
		for _, r := range rows {
			if r.App == "travel-diary" && r.Caller == "key:diary" && r.Invocations > 0 && r.GBSeconds > 0 {
				charged[r.Function] = true
			}
		}
		return charged["save-entry"] && charged["make-thumbnail"] && charged["index-entry"]
	})
	st, body, hdr = call(t, in.gateway, "GET", "/entries/0123456789abcdef0123456789abcdef", k.Key, nil)
	if st != 404 {
		t.Errorf("unknown entry: %d", st)
	}
	// A function's own error carries the request id too (the SDK adds it).
	if _, id := errorBody(t, body); id != hdr.Get("X-Request-Id") {
		t.Errorf("function error names request %q, header says %q", id, hdr.Get("X-Request-Id"))
	}

	// The CLI lists what was deployed.
	code, out, _ := aegisCLI(t, in, "functions", "list", "-o", "json")
	var fns []struct{ App, Function string }
	if code != 0 || json.Unmarshal([]byte(out), &fns) != nil {
		t.Fatalf("functions list: %d %s", code, out)
	}
	names := map[string]bool{}
	for _, f := range fns {
		if f.App == "travel-diary" {
			names[f.Function] = true
		}
	}
	for _, want := range []string{"save-entry", "make-thumbnail", "index-entry", "notify", "get-entry"} {
		if !names[want] {
			t.Errorf("functions list lacks %s: %s", want, out)
		}
	}
	code, out, _ = aegisCLI(t, in, "routes")
	if code != 0 || !strings.Contains(out, "/entries/{id}") {
		t.Errorf("routes: %d %s", code, out)
	}
	_ = image.Point{}
}
