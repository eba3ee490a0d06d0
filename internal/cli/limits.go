package cli

import (
	"github.com/aegis-platform/aegis/manifest"
)

// rateFlag reads "10/s", "600/m" or "1000/h" as a flag value, so a bad
// rate is a flag error (exit 2) before anything runs.
type rateFlag struct{ r *manifest.Rate }

func (f rateFlag) String() string {
	if f.r == nil {
		return ""
	}
	return f.r.String()
}
func (rateFlag) Type() string { return "rate" }
func (f rateFlag) Set(s string) error {
	r, err := manifest.ParseRate(s)
	if err != nil {
		return err
	}
	*f.r = r
	return nil
}

// quotaFlag reads "1000/day" (also /hour, /month) as a flag value.
type quotaFlag struct{ q *manifest.Quota }

func (f quotaFlag) String() string {
	if f.q == nil {
		return ""
	}
	return f.q.String()
}
func (quotaFlag) Type() string { return "budget" }
func (f quotaFlag) Set(s string) error {
	q, err := manifest.ParseQuota(s)
	if err != nil {
		return err
	}
	*f.q = q
	return nil
}

// checkBurst is the rule a burst follows: positive, and only with a rate.
func checkBurst(name string, burstSet bool, burst int, rate manifest.Rate) error {
	switch {
	case !burstSet:
		return nil
	case rate.IsZero():
		return usagef("create key %s: --burst needs --rate", name)
	case burst < 1 || burst > manifest.MaxRateCount:
		return usagef("create key %s: --burst must be between 1 and %d", name, manifest.MaxRateCount)
	}
	return nil
}
