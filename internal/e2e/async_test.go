package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// asyncCall starts an asynchronous invocation and returns its invocation
// id and the request id the gateway answered with.
func asyncCall(t *testing.T, gw, method, path, key string, body any, hdr ...string) (invID, reqID string) {
	t.Helper()
	st, out, h := call(t, gw, method, path, key, body, append([]string{"X-Aegis-Async", "true"}, hdr...)...)
	if st != http.StatusAccepted {
		t.Fatalf("async %s %s: %d %s", method, path, st, out)
	}
	var acc struct {
		InvocationID string `json:"invocation_id"`
		RequestID    string `json:"request_id"`
	}
	if err := json.Unmarshal(out, &acc); err != nil || acc.InvocationID == "" {
		t.Fatalf("async %s %s: no invocation id in %s", method, path, out)
	}
	if loc := h.Get("Location"); loc != "/_aegis/invocations/"+acc.InvocationID {
		t.Errorf("Location %q, want the invocation id %s", loc, acc.InvocationID)
	}
	return acc.InvocationID, acc.RequestID
}

// asyncResult waits until the invocation is done for reader and returns
// the body of the function's answer.
func asyncResult(t *testing.T, gw, id, reader string) string {
	t.Helper()
	var res struct {
		Status   string
		Response struct{ Body []byte }
	}
	eventually(t, 10*time.Second, "the async result of "+id, func() bool {
		st, body, _ := call(t, gw, "GET", "/_aegis/invocations/"+id, reader, nil)
		if st != http.StatusOK {
			t.Fatalf("result %s: %d %s", id, st, body)
		}
		_ = json.Unmarshal(body, &res)
		return res.Status == "done"
	})
	return string(res.Response.Body)
}

// TestAsyncIDsAreMintedByTheServer: a client choosing X-Request-Id cannot
// create, overwrite or read another caller's asynchronous result. The
// invocation id is the server's; the client's id only travels along as
// the request id.
func TestAsyncIDsAreMintedByTheServer(t *testing.T) {
	in, keyA := sharedServer(t)
	other, err := in.admin.CreateKey(context.Background(), "async-takeover")
	if err != nil {
		t.Fatal(err)
	}
	keyB := other.Key

	chosen := "client-chosen-id-0001"
	idA, reqA := asyncCall(t, in.gateway, "POST", "/probe/echo", keyA, []byte("from A"), "X-Request-Id", chosen)
	if idA == chosen {
		t.Fatalf("the invocation id is the client's X-Request-Id %q", chosen)
	}
	if reqA != chosen {
		t.Errorf("request id %q, want the client's correlation id %q", reqA, chosen)
	}
	if st, _, _ := call(t, in.gateway, "GET", "/_aegis/invocations/"+chosen, keyA, nil); st != http.StatusNotFound {
		t.Errorf("a result exists under the client's chosen id: %d", st)
	}

	// B names A's invocation id as its request id, on another route: it
	// gets an invocation of its own and A's result stays A's.
	idB, reqB := asyncCall(t, in.gateway, "POST", "/probe/echo", keyB, []byte("from B"), "X-Request-Id", idA)
	if idB == idA {
		t.Fatalf("B's invocation took A's id %s", idA)
	}
	if reqB != idA {
		t.Errorf("B's request id %q, want its correlation id %q", reqB, idA)
	}
	if got := asyncResult(t, in.gateway, idA, keyA); got != "from A" {
		t.Errorf("A reads %q, want its own result", got)
	}
	if got := asyncResult(t, in.gateway, idB, keyB); got != "from B" {
		t.Errorf("B reads %q, want its own result", got)
	}
	for _, c := range []struct{ who, id, key string }{{"B", idA, keyB}, {"A", idB, keyA}} {
		if st, body, _ := call(t, in.gateway, "GET", "/_aegis/invocations/"+c.id, c.key, nil); st != http.StatusNotFound {
			t.Errorf("%s read the other's result: %d %s", c.who, st, body)
		}
	}

	// A result of a public route is readable by whoever holds its id; a
	// caller naming that id still cannot replace it.
	idPub, _ := asyncCall(t, in.gateway, "GET", "/public/echo", "", nil)
	idC, _ := asyncCall(t, in.gateway, "POST", "/probe/echo", keyB, []byte("from C"), "X-Request-Id", idPub)
	if idC == idPub {
		t.Fatalf("a later invocation took the public invocation's id")
	}
	if got := asyncResult(t, in.gateway, idPub, ""); got != "" {
		t.Errorf("the public result was replaced: %q", got)
	}

	// Ids that are not the server's shape are unknown, not errors.
	for _, id := range []string{"x", "..", "0123456789abcdef0123456789ABCDEF", chosen} {
		if st, body, _ := call(t, in.gateway, "GET", "/_aegis/invocations/"+id, keyA, nil); st != http.StatusNotFound {
			t.Errorf("GET /_aegis/invocations/%s: %d %s, want 404", id, st, body)
		}
	}
}
