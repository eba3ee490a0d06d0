package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	m, errMsg := parse([]byte(`{"message":"hello, wörld","extra":[1,2]}`))
	if errMsg != "" || m.Message != "hello, wörld" {
		t.Fatalf("got %+v, %q", m, errMsg)
	}
	out, err := json.Marshal(&m)
	if err != nil || string(out) != `{"message":"hello, wörld"}` {
		t.Fatalf("re-encoded %s, %v", out, err)
	}

	for _, body := range []string{
		``,
		`not json SECRET`,
		`{"message":"SECRET"`,
		`["SECRET"]`,
		`{"message":7}`,
		`{"message":null}`,
		`{"message":""}`,
		`{"msg":"SECRET"}`,
		`null`,
	} {
		_, errMsg := parse([]byte(body))
		if errMsg == "" {
			t.Errorf("parse(%q) accepted", body)
		}
		if strings.Contains(errMsg, "SECRET") {
			t.Errorf("parse(%q) echoes the body: %q", body, errMsg)
		}
	}
}
