package admin

import (
	"net/http"
	"strconv"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/manifest"
)

// keyLimits reads a new key's rate, burst and budget into opts. The
// errors name the value the caller sent, which is theirs to see.
func keyLimits(req *adminapi.CreateKeyRequest, opts *auth.KeyOptions) error {
	if req.Rate != "" {
		r, err := manifest.ParseRate(req.Rate)
		if err != nil {
			return &userError{http.StatusBadRequest, "rate: " + err.Error()}
		}
		opts.Rate = r
	}
	if req.Burst != "" {
		n, err := strconv.Atoi(req.Burst)
		if err != nil || n < 1 || n > manifest.MaxRateCount {
			return &userError{http.StatusBadRequest, "burst must be a whole number between 1 and " + strconv.Itoa(manifest.MaxRateCount)}
		}
		if req.Rate == "" {
			return &userError{http.StatusBadRequest, "burst needs a rate"}
		}
		opts.Burst = n
	}
	if req.Budget != "" {
		q, err := manifest.ParseQuota(req.Budget)
		if err != nil {
			return &userError{http.StatusBadRequest, "budget: " + err.Error()}
		}
		opts.Budget = q
	}
	return nil
}

// keyLimitsOut writes a key's limits as the admin API shows them: the
// burst alongside a rate, the rate's count when none was given.
func keyLimitsOut(k *auth.KeyInfo, out *adminapi.Key) {
	out.Rate, out.Budget = k.Rate.String(), k.Budget.String()
	switch {
	case k.Rate.IsZero():
	case k.Burst > 0:
		out.Burst = strconv.Itoa(k.Burst)
	default:
		out.Burst = strconv.FormatInt(k.Rate.Count, 10)
	}
}
