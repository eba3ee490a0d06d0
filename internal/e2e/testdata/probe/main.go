// Command probe is an end-to-end test function: each operation (the {op}
// path parameter) exercises one capability or one way of misbehaving, so the
// tests can check what the platform allows, refuses and contains.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

type input struct {
	Table string `json:"table"`
	Key   string `json:"key"`
	Value string `json:"value"`
	Topic string `json:"topic"`
	URL   string `json:"url"`
	Size  int    `json:"size"`
	// Op chooses the operation of an admin invoke, which has no route
	// and so no {op} parameter.
	Op string `json:"op"`
}

// outcome reports what a host call returned, as the guest saw it.
type outcome struct {
	OK     bool   `json:"ok"`
	Value  string `json:"value,omitempty"`
	Error  string `json:"error,omitempty"`
	Denied bool   `json:"denied,omitempty"`
	Status int    `json:"status,omitempty"`
}

func result(v []byte, err error) *aegis.Response {
	o := outcome{OK: err == nil, Value: string(v)}
	if err != nil {
		o.Error = err.Error()
		o.Denied = errors.Is(err, aegis.ErrPermissionDenied)
	}
	return aegis.JSON(200, o)
}

var calls int // counts invocations served by this instance

func init() {
	aegis.HandleHTTP(handle)
	aegis.HandleEvent(func(ev *aegis.Event) error {
		aegis.Log("info", "event "+ev.Topic+" attempt received")
		switch ev.Kind {
		case "object":
			return aegis.KV("events").Put(ev.RequestID, []byte(ev.Operation+":"+ev.Key))
		case "schedule":
			// One key per run as well, so a test can count the runs
			// (follow_test.go: once per tick across servers).
			if err := aegis.KV("events").Put("tick-"+ev.RequestID, []byte("ran")); err != nil {
				return err
			}
			return aegis.KV("events").Put("last-tick", []byte(ev.RequestID))
		}
		if strings.HasPrefix(ev.Topic, "jobs.fail") {
			return errors.New("this event always fails")
		}
		// loop.ping and loop.pong bounce an event back and forth forever,
		// unless the platform stops the chain.
		if next, ok := map[string]string{"loop.ping": "loop.pong", "loop.pong": "loop.ping"}[ev.Topic]; ok {
			aegis.Log("info", "loop hop "+strconv.Itoa(ev.Hop))
			return aegis.Publish(next, ev.Data)
		}
		return aegis.KV("events").Put(ev.RequestID, ev.Data)
	})
}

func handle(r *aegis.Request) *aegis.Response {
	calls++
	var in input
	if len(r.Body) > 0 && r.Header.Get("Content-Type") != "application/octet-stream" {
		_ = json.Unmarshal(r.Body, &in)
	}
	op := r.Params["op"]
	if op == "" {
		op = in.Op
	}
	switch op {
	case "", "echo": // "" is an admin invoke, which has no route parameters
		return &aegis.Response{Status: 200, Header: map[string]string{"Content-Type": "application/octet-stream"}, Body: r.Body}
	case "calls":
		return aegis.JSON(200, map[string]int{"calls": calls})
	case "kv-put":
		return result(nil, aegis.KV(in.Table).Put(in.Key, []byte(in.Value)))
	case "kv-get":
		return result(aegis.KV(in.Table).Get(in.Key))
	case "kv-list": // the keys starting with in.Key, one a line
		keys, err := aegis.KV(in.Table).List(in.Key)
		return result([]byte(strings.Join(keys, "\n")), err)
	case "obj-put":
		return result(nil, aegis.PutObject(in.Key, []byte(in.Value)))
	case "obj-get":
		return result(aegis.GetObject(in.Key))
	case "publish":
		return result(nil, aegis.Publish(in.Topic, []byte(in.Value)))
	case "publish-n":
		// Publishes in.Size events and says how many went out before the
		// first refusal.
		for i := 0; i < in.Size; i++ {
			if err := aegis.Publish(in.Topic, []byte(in.Value)); err != nil {
				return aegis.JSON(200, outcome{OK: false, Value: strconv.Itoa(i), Error: err.Error()})
			}
		}
		return aegis.JSON(200, outcome{OK: true, Value: strconv.Itoa(in.Size)})
	case "fetch":
		resp, err := aegis.Fetch(&aegis.FetchRequest{Method: "GET", URL: in.URL})
		if err != nil {
			return result(nil, err)
		}
		return aegis.JSON(200, outcome{OK: true, Status: resp.Status, Value: string(resp.Body)})
	case "log":
		aegis.Log("info", "probe says "+in.Value)
		println("probe printed " + in.Value)
		return aegis.Text(200, "logged")
	case "secret":
		// Reads the secret in.Key and logs it as it is, in base64 and in
		// hex, as a careless function might: the platform must scrub every
		// form before the lines are stored.
		v, err := aegis.Secret(in.Key)
		if err == nil {
			aegis.Log("info", "probe read secret "+string(v))
			println("probe printed secret " + base64.StdEncoding.EncodeToString(v) + " " + base64.RawURLEncoding.EncodeToString(v))
			aegis.Log("warn", "probe hex secret "+hex.EncodeToString(v)+" "+strings.ToUpper(hex.EncodeToString(v)))
		}
		return result(v, err)
	case "secret-panic":
		v, err := aegis.Secret(in.Key)
		if err != nil {
			return result(nil, err)
		}
		panic("probe could not use " + string(v))
	case "loop":
		for {
			calls++
		}
	case "membomb":
		var hoard [][]byte
		for {
			hoard = append(hoard, make([]byte, 1<<20))
			hoard[len(hoard)-1][0] = 1
		}
	case "huge":
		return &aegis.Response{Status: 200, Body: make([]byte, in.Size)}
	case "sleep":
		time.Sleep(time.Duration(in.Size) * time.Millisecond)
		return aegis.Text(200, "rested")
	case "panic":
		panic("probe panicked on purpose")
	case "sandbox":
		// What a module can see of the host: nothing.
		_, fsErr := os.ReadFile("/etc/hostname")
		_, dirErr := os.ReadDir("/")
		return aegis.JSON(200, map[string]any{"env": os.Environ(), "args": os.Args, "fs": fsErr == nil || dirErr == nil})
	case "headers":
		return aegis.JSON(200, r.Header)
	case "identity":
		return aegis.JSON(200, r.Identity)
	case "cookies": // one header sent twice: its lines separated by LF
		return &aegis.Response{Status: 200, Header: map[string]string{"Set-Cookie": "a=1; Path=/\nb=2; Path=/"}}
	}
	return aegis.Error(404, "unknown op")
}

func main() {}
