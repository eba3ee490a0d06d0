package aegis

import (
	"encoding/json"
	"fmt"
)

// Table is a key-value table named in the function's kv grants.
type Table struct{ name string }

// KV returns the table with the given name. Access is checked on each call.
func KV(table string) Table { return Table{name: table} }

// Get returns the value stored at key, or an error matching ErrNotFound.
func (t Table) Get(key string) ([]byte, error) {
	return result(hostKVGet(t.name, key))
}

// Put stores v at key.
func (t Table) Put(key string, v []byte) error {
	return check(hostKVPut(t.name, key, v))
}

// Delete removes key. Deleting a missing key is not an error.
func (t Table) Delete(key string) error {
	return check(hostKVDelete(t.name, key))
}

// List returns the keys that start with prefix.
func (t Table) List(prefix string) ([]string, error) {
	return listResult(hostKVList(t.name, prefix))
}

// GetObject returns the object stored at key.
func GetObject(key string) ([]byte, error) { return result(hostObjectGet(key)) }

// PutObject stores data at key.
func PutObject(key string, data []byte) error { return check(hostObjectPut(key, data)) }

// DeleteObject removes the object at key.
func DeleteObject(key string) error { return check(hostObjectDelete(key)) }

// ListObjects returns the object keys that start with prefix.
func ListObjects(prefix string) ([]string, error) { return listResult(hostObjectList(prefix)) }

// Publish sends data to a topic named in the function's publish grants.
func Publish(topic string, data []byte) error { return check(hostPublish(topic, data)) }

// FetchRequest is an outbound HTTP request. The URL's host must be named
// in the function's egress grants.
type FetchRequest struct {
	Method  string            `json:"method"` // "" means GET
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// FetchResponse is the answer to a FetchRequest.
type FetchResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// Fetch makes an outbound HTTP request through the platform's egress
// gateway. A non-2xx status is not an error; a refused or failed request
// is.
func Fetch(req *FetchRequest) (*FetchResponse, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode fetch request: %w", err)
	}
	out, err := result(hostFetch(in))
	if err != nil {
		return nil, err
	}
	var resp FetchResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("decode fetch response: %w", err)
	}
	return &resp, nil
}

// InvokeRequest is a call to an HTTP route of another function of the same
// app, private routes included. That function must be named in the
// caller's invoke grants.
type InvokeRequest struct {
	Method  string            `json:"method"` // "" means GET
	Path    string            `json:"path"`   // as a client would send it, with an optional "?query"
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// InvokeResponse is the called function's answer.
type InvokeResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// Invoke calls another function of the same app directly, without going
// through the gateway: it runs with the request id of this invocation and
// sees this function as its caller (Identity scheme "function", subject
// "app/function"). Any status the function answers, 4xx and 5xx included,
// is a response, not an error. Errors: ErrPermissionDenied when the
// function is not in the invoke grants (or its route's rule refuses),
// ErrNotFound when no route of the app matches the method and path,
// ErrLimitExceeded for a body over its max_body, a response over its
// max_response, a function at its concurrency limit or timed out, or a
// chain of calls and events deeper than the platform allows (16), and
// ErrUnavailable when the function failed.
func Invoke(req *InvokeRequest) (*InvokeResponse, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode invoke request: %w", err)
	}
	out, err := result(hostInvoke(in))
	if err != nil {
		return nil, err
	}
	var resp InvokeResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("decode invoke response: %w", err)
	}
	return &resp, nil
}

// Secret returns the current value of the app's secret name, which must
// be named in the function's secrets grants. Errors: ErrPermissionDenied
// when it is not granted, ErrNotFound when the app has no such secret,
// ErrInvalidArgument for a malformed name, ErrUnavailable when the
// platform has no vault.
//
// The value is the function's to use, not to show: the platform scrubs
// the values an invocation read (as they are, in base64 and in hex) from
// what it logs and from its error message, but not from its response,
// what it stores or what it sends.
func Secret(name string) ([]byte, error) {
	return result(hostSecret(name))
}

// Log writes a line to the function's log, joined to the request id by
// the platform. level is "debug", "info", "warn" or "error"; anything else
// is info. Writing to stdout (info) and stderr (warn) works too. The last
// line logged at "error" before an invocation fails is its error message
// for `aegis invoke` and the dead-letter list (the SDK logs a panic or an
// event handler's error that way itself); clients of the gateway never
// see it.
func Log(level, msg string) {
	var n int32
	switch level {
	case "debug":
		n = 0
	case "warn":
		n = 2
	case "error":
		n = 3
	default:
		n = 1
	}
	hostLog(n, msg)
}

func listResult(code int32) ([]string, error) {
	b, err := result(code)
	if err != nil {
		return nil, err
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("decode key list: %w", err)
	}
	return keys, nil
}
