package rbac

import (
	"slices"
	"strings"
	"testing"
)

func TestLoosenedRates(t *testing.T) {
	withRate := func(rate string) string {
		return strings.Replace(base, `path: "/pay" }`, `path: "/pay", rate: `+rate+` }`, 1)
	}
	limited := withRate("{ total: 100/s, per_caller: 5/s, per_address: 600/m }")
	for _, tt := range []struct {
		name      string
		old, next string
		want      []string
	}{
		{name: "same rates", old: limited, next: limited},
		{name: "a new rate", old: base, next: limited},
		{name: "tightened", old: limited, next: withRate("{ total: 50/s, per_caller: 1/s, per_address: 5/s }")},
		{name: "same pace in other units", old: limited, next: withRate("{ total: 6000/m, per_caller: 300/m, per_address: 10/s }")},
		{name: "rate removed", old: limited, next: base, want: []string{
			"route POST /pay drops rate limit total of 100/s",
			"route POST /pay drops rate limit per_caller of 5/s",
			"route POST /pay drops rate limit per_address of 600/m"}},
		{name: "one raised, one dropped", old: limited, next: withRate("{ total: 100/s, per_caller: 6/s }"), want: []string{
			"route POST /pay raises rate limit per_caller from 5/s to 6/s",
			"route POST /pay drops rate limit per_address of 600/m"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := DangerousChanges(parse(t, tt.old), parse(t, tt.next)); !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}
