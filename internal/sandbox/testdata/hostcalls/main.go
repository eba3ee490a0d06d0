// Command hostcalls exercises every platform call and reports what each
// returned, so tests can check both directions of the ABI.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

type step struct {
	Value  string   `json:"value,omitempty"`
	List   []string `json:"list,omitempty"`
	Status int      `json:"status,omitempty"`
	Err    string   `json:"err,omitempty"`
	Kind   string   `json:"kind,omitempty"` // which sentinel the error matched
}

func report(v []byte, err error) step {
	s := step{Value: string(v)}
	if err != nil {
		s.Err = err.Error()
		for _, k := range []struct {
			name string
			err  error
		}{
			{"permission_denied", aegis.ErrPermissionDenied},
			{"not_found", aegis.ErrNotFound},
			{"invalid_argument", aegis.ErrInvalidArgument},
			{"limit_exceeded", aegis.ErrLimitExceeded},
			{"unavailable", aegis.ErrUnavailable},
			{"internal", aegis.ErrInternal},
		} {
			if errors.Is(err, k.err) {
				s.Kind = k.name
			}
		}
	}
	return s
}

func init() {
	aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
		if r.Path == "/secret" {
			return secrets(r)
		}
		out := map[string]step{}
		out["kv_put"] = report(nil, aegis.KV("notes").Put("a", r.Body))
		out["kv_get"] = report(aegis.KV("notes").Get("a"))
		out["kv_missing"] = report(aegis.KV("notes").Get("missing"))
		keys, err := aegis.KV("notes").List("")
		s := report(nil, err)
		s.List = keys
		out["kv_list"] = s
		out["kv_delete"] = report(nil, aegis.KV("notes").Delete("a"))
		out["kv_denied"] = report(aegis.KV("secret").Get("x"))
		out["object_put"] = report(nil, aegis.PutObject("img/1", []byte("png")))
		out["object_get"] = report(aegis.GetObject("img/1"))
		objs, err := aegis.ListObjects("img/")
		s = report(nil, err)
		s.List = objs
		out["object_list"] = s
		out["object_delete"] = report(nil, aegis.DeleteObject("img/1"))
		out["publish"] = report(nil, aegis.Publish("note.saved", []byte("hi")))
		resp, err := aegis.Fetch(&aegis.FetchRequest{Method: "POST", URL: "https://api.example.com/x", Body: []byte("ping")})
		s = report(nil, err)
		if resp != nil {
			s.Value, s.Status = string(resp.Body), resp.Status
		}
		out["fetch"] = s
		ir, err := aegis.Invoke(&aegis.InvokeRequest{Method: "POST", Path: "/internal/thumb?size=s", Headers: map[string]string{"X-A": "1"}, Body: []byte("pic")})
		s = report(nil, err)
		if ir != nil {
			s.Value, s.Status = string(ir.Body)+"|"+ir.Headers["X-Callee"], ir.Status
		}
		out["invoke"] = s
		out["invoke_denied"] = report(nil, func() error { _, err := aegis.Invoke(&aegis.InvokeRequest{Path: "/nope"}); return err }())
		out["invoke_bad"] = report(nil, func() error { _, err := aegis.Invoke(&aegis.InvokeRequest{Path: "/a\nb", Method: "GE T"}); return err }())
		out["internal"] = report(aegis.KV("boom").Get("x"))
		return aegis.JSON(200, out)
	})
	aegis.HandleEvent(func(e *aegis.Event) error {
		if e.Topic == "fail" {
			return errors.New("refusing topic fail")
		}
		return aegis.KV("events").Put(e.Topic, e.Data)
	})
}

// secrets reads the secrets named in the body (comma-separated), answers
// what each read returned, and logs every value in every form the
// platform scrubs, through each way a function logs; with ?fail it then
// panics with a message that quotes the first value.
func secrets(r *aegis.Request) *aegis.Response {
	out := map[string]step{}
	var first []byte
	for _, name := range strings.Split(string(r.Body), ",") {
		v, err := aegis.Secret(name)
		out[name] = report(v, err)
		if err != nil {
			continue
		}
		if first == nil {
			first = v
		}
		aegis.Log("info", "plain "+string(v)+" end")
		fmt.Println("std", base64.StdEncoding.EncodeToString(v), "raw", base64.RawStdEncoding.EncodeToString(v))
		fmt.Fprintln(os.Stderr, "url", base64.URLEncoding.EncodeToString(v), "rawurl", base64.RawURLEncoding.EncodeToString(v))
		aegis.Log("warn", "hex "+hex.EncodeToString(v)+" HEX "+strings.ToUpper(hex.EncodeToString(v)))
		fmt.Print("unfinished " + string(v))
	}
	if r.Query.Has("fail") && first != nil {
		panic("could not log in with " + string(first) + ": refused")
	}
	return aegis.JSON(200, out)
}

func main() {}
