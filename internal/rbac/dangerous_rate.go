package rbac

import (
	"fmt"

	"github.com/aegis-platform/aegis/manifest"
)

// loosenedRates reports the routes of old whose rate limits next drops or
// raises: each of total, per_caller and per_address that was set and is
// now unset or admits more per second. A route new to the app, or one
// that had no rate, loosens nothing.
func loosenedRates(old, next *manifest.Manifest) []string {
	if old == nil {
		return nil
	}
	before := map[string]*manifest.RouteRate{}
	for _, fn := range old.Functions {
		if fn == nil {
			continue
		}
		for _, t := range fn.Triggers {
			if t.HTTP != nil && t.HTTP.Rate != nil {
				before[routeKey(t.HTTP)] = t.HTTP.Rate
			}
		}
	}
	var out []string
	for _, name := range next.FunctionNames() {
		fn := next.Functions[name]
		if fn == nil {
			continue
		}
		for _, t := range fn.Triggers {
			h := t.HTTP
			if h == nil {
				continue
			}
			was, ok := before[routeKey(h)]
			if !ok {
				continue
			}
			now := manifest.RouteRate{}
			if h.Rate != nil {
				now = *h.Rate
			}
			for _, r := range []struct {
				field    string
				was, now manifest.Rate
			}{{"total", was.Total, now.Total}, {"per_caller", was.PerCaller, now.PerCaller}, {"per_address", was.PerAddress, now.PerAddress}} {
				switch {
				case r.was.IsZero():
				case r.now.IsZero():
					out = append(out, fmt.Sprintf("route %s %s drops rate limit %s of %s", h.Method, h.Path, r.field, r.was))
				case r.now.PerSecond() > r.was.PerSecond():
					out = append(out, fmt.Sprintf("route %s %s raises rate limit %s from %s to %s", h.Method, h.Path, r.field, r.was, r.now))
				}
			}
		}
	}
	return out
}
