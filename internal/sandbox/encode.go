package sandbox

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/aegis-platform/aegis/internal/jsonenc"
)

// appendRequestMeta appends the request meta document (docs/abi.md): req
// without its body, byte for byte what encoding/json.Marshal(req) writes
// (FuzzAppendRequestMeta checks that). It is written by hand because it
// runs on every invocation that reads its meta, and reflection over the
// header and query maps was the largest host-side cost of a warm call.
func appendRequestMeta(b []byte, req *Request) []byte {
	b = append(b, `{"kind":`...)
	b = jsonenc.AppendString(b, req.Kind)
	b = append(b, `,"request_id":`...)
	b = jsonenc.AppendString(b, req.RequestID)
	b = jsonenc.AppendStringField(b, "method", req.Method)
	b = jsonenc.AppendStringField(b, "path", req.Path)
	if len(req.Params) > 0 {
		b = append(b, `,"params":{`...)
		for i, k := range sortedKeys(req.Params) {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k)
			b = append(b, ':')
			b = jsonenc.AppendString(b, req.Params[k])
		}
		b = append(b, '}')
	}
	b = appendListMap(b, "query", req.Query)
	b = appendListMap(b, "headers", req.Headers)
	b = jsonenc.AppendStringField(b, "topic", req.Topic)
	b = jsonenc.AppendStringField(b, "key", req.Key)
	b = jsonenc.AppendStringField(b, "operation", req.Operation)
	if req.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(req.Attempt), 10)
	}
	if id := req.Identity; id != nil {
		// Every authenticated request has one; only a JWT's claims,
		// shaped by the token's issuer, go through encoding/json.
		b = append(b, `,"identity":{"scheme":`...)
		b = jsonenc.AppendString(b, id.Scheme)
		b = jsonenc.AppendStringField(b, "subject", id.Subject)
		b = jsonenc.AppendStringField(b, "issuer", id.Issuer)
		if len(id.Claims) > 0 {
			if claims, err := json.Marshal(id.Claims); err == nil {
				b = append(b, `,"claims":`...)
				b = append(b, claims...)
			}
		}
		b = append(b, '}')
	}
	if req.Hop != 0 {
		b = append(b, `,"hop":`...)
		b = strconv.AppendInt(b, int64(req.Hop), 10)
	}
	return append(b, '}')
}

// appendListMap appends ,"name":{"k":["v",...],...} unless m is empty.
func appendListMap(b []byte, name string, m map[string][]string) []byte {
	if len(m) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":{`...)
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		vs := m[k]
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range vs {
			if j > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// sortedKeys returns m's keys in the order encoding/json writes them.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
