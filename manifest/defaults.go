package manifest

import (
	"slices"
)

// WithDefaults returns a deep copy of m with every unset value filled in:
// limits from the Default constants, isolation "reuse", three delivery
// attempts for events, api-key auth on every route not marked public, RS256
// and 60s of skew for jwt, the Aegis-Signature header for hmac, and
// both put and delete for object triggers. m itself is not changed, so the
// manifest as written can still be shown or stored.
func (m *Manifest) WithDefaults() *Manifest {
	c := m.clone()
	defaultMode(c.Budget)
	for name, fn := range c.Functions {
		if fn == nil {
			continue
		}
		fn.Name = name
		defaultMode(fn.Budget)
		if fn.Isolation == "" {
			fn.Isolation = IsolationReuse
		}
		fn.Limits = fn.Limits.WithDefaults()
		for _, t := range fn.Triggers {
			switch {
			case t.HTTP != nil:
				// A private route is never reached from outside, so it has
				// no scheme to default to: its callers are named by invoke
				// grants.
				if !t.HTTP.Public && !t.HTTP.Private && len(t.HTTP.Auth) == 0 {
					t.HTTP.Auth = []string{AuthAPIKey}
				}
				if t.HTTP.Schema != nil && t.HTTP.Schema.Body != "" && len(t.HTTP.ContentTypes) == 0 {
					t.HTTP.ContentTypes = slices.Clone(DefaultContentTypes)
				}
				if j := t.HTTP.JWT; j != nil {
					if len(j.Algorithms) == 0 {
						j.Algorithms = slices.Clone(DefaultJWTAlgorithms)
					}
					if j.Skew == 0 {
						j.Skew = Duration(DefaultJWTSkew)
					}
				}
				if h := t.HTTP.HMAC; h != nil && h.Header == "" {
					h.Header = DefaultHMACHeader
				}
			case t.Event != nil:
				if t.Event.MaxAttempts == 0 {
					t.Event.MaxAttempts = DefaultMaxAttempts
				}
			case t.Object != nil:
				if len(t.Object.Operations) == 0 {
					t.Object.Operations = []string{"put", "delete"}
				}
			}
		}
	}
	return c
}

// WithDefaults returns l with every unset limit at its default.
func (l Limits) WithDefaults() Limits {
	if l.Timeout == 0 {
		l.Timeout = Duration(DefaultTimeout)
	}
	if l.Memory == 0 {
		l.Memory = DefaultMemory
	}
	if l.Concurrency == 0 {
		l.Concurrency = DefaultConcurrency
	}
	if l.MaxBody == 0 {
		l.MaxBody = DefaultMaxBody
	}
	if l.MaxResponse == 0 {
		l.MaxResponse = DefaultMaxResponse
	}
	if l.MaxFetches == 0 {
		l.MaxFetches = DefaultMaxFetches
	}
	if l.MaxEgress == 0 {
		l.MaxEgress = DefaultMaxEgress
	}
	if l.MaxPublishes == 0 {
		l.MaxPublishes = DefaultMaxPublishes
	}
	if l.MaxEventSize == 0 {
		l.MaxEventSize = DefaultMaxEventSize
	}
	return l
}

// clone copies m deeply: WithDefaults must not write through shared
// pointers or slices into the caller's manifest.
func (m *Manifest) clone() *Manifest {
	c := &Manifest{App: m.App, Budget: shallow(m.Budget)}
	if m.Functions != nil {
		c.Functions = make(map[string]*Function, len(m.Functions))
	}
	for name, fn := range m.Functions {
		if fn == nil {
			c.Functions[name] = nil
			continue
		}
		f := *fn
		f.Triggers = slices.Clone(fn.Triggers)
		for i, t := range f.Triggers {
			f.Triggers[i] = t.clone()
		}
		f.Grants = fn.Grants.clone()
		f.Budget = shallow(fn.Budget)
		c.Functions[name] = &f
	}
	return c
}

func (t Trigger) clone() Trigger {
	if t.HTTP != nil {
		h := *t.HTTP
		h.Auth = slices.Clone(h.Auth)
		h.ContentTypes = slices.Clone(h.ContentTypes)
		h.Schema, h.HMAC, h.Rate = shallow(h.Schema), shallow(h.HMAC), shallow(h.Rate)
		if h.JWT = shallow(h.JWT); h.JWT != nil {
			h.JWT.Algorithms = slices.Clone(h.JWT.Algorithms)
		}
		t.HTTP = &h
	}
	t.Event, t.Schedule = shallow(t.Event), shallow(t.Schedule)
	if t.Object = shallow(t.Object); t.Object != nil {
		t.Object.Operations = slices.Clone(t.Object.Operations)
	}
	return t
}

// shallow copies *p (nil stays nil); the caller deep-copies any slices.
func shallow[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func (g Grants) clone() Grants {
	g.KV = ReadWrite{Read: slices.Clone(g.KV.Read), Write: slices.Clone(g.KV.Write)}
	g.Objects = ReadWrite{Read: slices.Clone(g.Objects.Read), Write: slices.Clone(g.Objects.Write)}
	g.Events.Publish = slices.Clone(g.Events.Publish)
	g.Egress.Hosts = slices.Clone(g.Egress.Hosts)
	g.Invoke = slices.Clone(g.Invoke)
	return g
}

// defaultMode makes a budget without a mode a hard one.
func defaultMode(b *Budget) {
	if b != nil && b.Mode == "" {
		b.Mode = BudgetHard
	}
}
