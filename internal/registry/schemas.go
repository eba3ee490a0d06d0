package registry

import (
	"fmt"
	"strings"

	"github.com/aegis-platform/aegis/internal/schema"
	"github.com/aegis-platform/aegis/manifest"
)

// compiledSchemas are the schemas of one version, ready to attach.
type compiledSchemas struct {
	// requests check HTTP triggers, by function and trigger index.
	requests map[ruleKey]*schema.Request
	// triggers validate event and object triggers, by function, then
	// TriggerKey.
	triggers map[string]map[string]*schema.Schema
}

// compileSchemas compiles every schema file the manifest names, from the
// files sent with the deploy (or kept in the version record), and the
// checks of the triggers naming them. A file that is missing, is not JSON
// or is not a valid schema is aegis.ErrInvalidArgument named by file and
// field, like a manifest error.
//
// Files that nothing needs (neither the manifest nor a $ref) are ignored,
// and dropped from ver.Schemas, so a version keeps exactly the files it
// compiles: a deploy sends what the CLI found, the record holds what runs.
func compileSchemas(ver *versionRecord) (*compiledSchemas, error) {
	files := make(map[string][]byte, len(ver.Schemas))
	for name, text := range ver.Schemas {
		files[name] = []byte(text)
	}
	// Refusals are manifest errors: they name the manifest, the field
	// naming the schema file and what is wrong with the file, and reach the
	// author as they are.
	c, err := schema.NewCompiler(files)
	if err != nil {
		return nil, &manifest.Error{File: ver.File, Msg: err.Error()}
	}
	out := &compiledSchemas{requests: map[ruleKey]*schema.Request{}, triggers: map[string]map[string]*schema.Schema{}}
	compile := func(field, name string) (*schema.Schema, error) {
		if name == "" {
			return nil, nil
		}
		s, err := c.Compile(name)
		if err != nil {
			return nil, &manifest.Error{File: ver.File, Field: field, Msg: err.Error()}
		}
		return s, nil
	}
	for _, fn := range ver.Manifest.FunctionNames() {
		for i, t := range ver.Manifest.Functions[fn].Triggers {
			field := fmt.Sprintf("functions.%s.triggers[%d]", fn, i)
			switch {
			case t.HTTP != nil:
				var body, query, params *schema.Schema
				if sc := t.HTTP.Schema; sc != nil {
					if body, err = compile(field+".http.schema.body", sc.Body); err != nil {
						return nil, err
					}
					if query, err = compile(field+".http.schema.query", sc.Query); err != nil {
						return nil, err
					}
					if params, err = compile(field+".http.schema.params", sc.Params); err != nil {
						return nil, err
					}
				}
				if req := schema.NewRequest(t.HTTP.ContentTypes, body, query, params); req != nil {
					out.requests[ruleKey{fn, i}] = req
				}
			case t.Event != nil && t.Event.Schema != "":
				s, err := compile(field+".event.schema", t.Event.Schema)
				if err != nil {
					return nil, err
				}
				out.add(fn, EventTriggerKey(t.Event), s)
			case t.Object != nil && t.Object.Schema != "":
				s, err := compile(field+".object.schema", t.Object.Schema)
				if err != nil {
					return nil, err
				}
				out.add(fn, ObjectTriggerKey(t.Object), s)
			}
		}
	}
	used := map[string]string{}
	for _, name := range c.Used() {
		used[name] = ver.Schemas[name]
	}
	if len(used) == 0 {
		used = nil
	}
	ver.Schemas = used
	return out, nil
}

func (c *compiledSchemas) add(fn, key string, s *schema.Schema) {
	if c.triggers[fn] == nil {
		c.triggers[fn] = map[string]*schema.Schema{}
	}
	c.triggers[fn][key] = s
}

// EventTriggerKey names an event trigger among a function's triggers, in
// Function.Schemas and in the schema violation counter: "event:TOPIC".
func EventTriggerKey(t *manifest.EventTrigger) string { return "event:" + t.Topic }

// ObjectTriggerKey names an object trigger: "object:PREFIX|OPS", the
// operations as the manifest (with defaults) lists them, so two triggers
// on one prefix for different operations stay apart.
func ObjectTriggerKey(t *manifest.ObjectTrigger) string {
	return "object:" + t.Prefix + "|" + strings.Join(t.Operations, ",")
}

// RequestCheck returns the check (content types and schemas) of a
// function's HTTP trigger, by trigger index; nil when it has none. The
// route of the trigger carries the same check (route.Route.Schema).
func (a *App) RequestCheck(function string, trigger int) *schema.Request {
	return a.requests[ruleKey{function, trigger}]
}
