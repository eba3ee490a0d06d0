package adminapi

import "time"

// GuardBlock is one countermeasure of the guard in force (GET
// /v1/guard/blocks, docs/guard.md): Kind "address" refuses the client
// address Target (an IPv4 address, or an IPv6 /64) until Expires. Rule
// placed it, having seen Count signals within Window (a Go duration,
// "1m0s").
type GuardBlock struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	Target  string    `json:"target"`
	Rule    string    `json:"rule"`
	Count   int       `json:"count"`
	Window  string    `json:"window"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}
