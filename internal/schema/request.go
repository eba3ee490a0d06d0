package schema

import (
	"mime"
	"net/url"
	"slices"
	"strings"
)

// Request checks one HTTP trigger's requests: the body's media type, then
// the path parameters, the query and the body, each against its schema
// when the trigger names one. It is immutable and safe for concurrent use;
// the gateway calls it for routes and the invoke host call for private
// routes, so both paths refuse the same requests.
type Request struct {
	contentTypes        []string // lower case; empty: any
	body, query, params *Schema
}

// NewRequest returns the check of a trigger, or nil when the trigger has
// nothing to check. contentTypes are "type/subtype" without parameters.
func NewRequest(contentTypes []string, body, query, params *Schema) *Request {
	if len(contentTypes) == 0 && body == nil && query == nil && params == nil {
		return nil
	}
	r := &Request{body: body, query: query, params: params}
	for _, ct := range contentTypes {
		r.contentTypes = append(r.contentTypes, strings.ToLower(ct))
	}
	return r
}

// Check refuses a request that does not fit, with an *Error whose Status
// is 415 (media type) or 400 (anything else). In order:
//
//   - a non-empty body must have a Content-Type whose media type
//     (parameters such as charset ignored) is listed, when the trigger
//     lists any; an empty body has nothing to interpret and passes;
//   - params, an object of the path parameters, each value a string;
//   - query, an object of the query parameters, each value a string, or an
//     array of strings when the parameter is repeated;
//   - body, one JSON value; an empty body is "body: required".
//
// A nil *Request accepts everything.
func (r *Request) Check(contentType string, query url.Values, params map[string]string, body []byte) error {
	if r == nil {
		return nil
	}
	if len(r.contentTypes) > 0 && len(body) > 0 && !r.accepts(contentType) {
		return &Error{Kind: KindContentType, Accepted: slices.Clone(r.contentTypes), cause: ErrContentType}
	}
	if r.params != nil {
		obj := make(map[string]any, len(params))
		for k, v := range params {
			obj[k] = v
		}
		if err := r.params.Validate(KindParams, obj); err != nil {
			return err
		}
	}
	if r.query != nil {
		if err := r.query.Validate(KindQuery, QueryObject(query)); err != nil {
			return err
		}
	}
	if r.body != nil {
		if len(body) == 0 {
			return newError(KindBody, nil, []Violation{{Field: KindBody, Reason: "required"}})
		}
		if err := r.body.ValidateJSON(KindBody, body); err != nil {
			return err
		}
	}
	return nil
}

// accepts reports whether a Content-Type header names a listed media type.
func (r *Request) accepts(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return slices.Contains(r.contentTypes, mt) // ParseMediaType lower-cases
}

// QueryObject is the query as a query schema sees it: every parameter a
// string, or an array of strings when it is given more than once.
func QueryObject(q url.Values) map[string]any {
	obj := make(map[string]any, len(q))
	for k, vs := range q {
		if len(vs) == 1 {
			obj[k] = vs[0]
			continue
		}
		arr := make([]any, len(vs))
		for i, v := range vs {
			arr[i] = v
		}
		obj[k] = arr
	}
	return obj
}
