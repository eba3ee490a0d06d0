package manifest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseDuration parses a Go duration such as "2s", "150ms" or "1m30s". A bare
// number other than 0 is rejected: "5" could mean seconds or milliseconds,
// and a manifest should not make the reader guess.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return Duration(d), nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d the way time.Duration does ("2s", "1m30s"), which
// ParseDuration reads back exactly.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads a duration from a scalar node.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as \"2s\", got %s", kindName(n))
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as "2s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes d as a string in the manifest's own notation, so a
// manifest stored as JSON reads like the YAML it came from.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string, or a number of nanoseconds as
// encoding/json would write a plain time.Duration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid duration %s", b)
	}
	*d = Duration(n)
	return nil
}

// Byte size units. Binary units (KiB) and decimal units (KB) both exist
// because users copy sizes from places that use either.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
	KB  ByteSize = 1e3
	MB  ByteSize = 1e6
	GB  ByteSize = 1e9
	TB  ByteSize = 1e12
)

// byteUnits lists the units ParseByteSize accepts. Binary units come first
// so String prefers "1000KiB" to "1024KB" when both are as short.
var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB},
	{"B", 1},
}

// ParseByteSize parses a whole number of bytes with an optional unit:
// "64MiB", "512KiB", "1MB", "1GB", "1048576". Units are case-insensitive
// and may be separated from the number by a space. Fractions are not
// accepted, so every size has one exact value.
func ParseByteSize(s string) (ByteSize, error) {
	bad := fmt.Errorf("invalid size %q", s)
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, bad
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, bad
	}
	unit := strings.TrimSpace(t[i:])
	if unit == "" {
		return ByteSize(n), nil
	}
	for _, u := range byteUnits {
		if strings.EqualFold(unit, u.name) {
			if n > math.MaxInt64/int64(u.size) {
				return 0, bad
			}
			return ByteSize(n) * u.size, nil
		}
	}
	return 0, bad
}

// String formats b with the unit that represents it exactly in the fewest
// digits ("64MiB", "1TB"), so ParseByteSize(b.String()) == b for every
// non-negative size.
func (b ByteSize) String() string {
	if b <= 0 {
		return strconv.FormatInt(int64(b), 10)
	}
	best := strconv.FormatInt(int64(b), 10)
	digits := len(best)
	for _, u := range byteUnits {
		if u.size > 1 && b%u.size == 0 {
			if n := strconv.FormatInt(int64(b/u.size), 10); len(n) < digits {
				best, digits = n+u.name, len(n)
			}
		}
	}
	return best
}

// UnmarshalYAML reads a size from a scalar node.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size such as \"64MiB\", got %s", kindName(n))
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML writes b as "64MiB".
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// MarshalJSON writes b as a string in the manifest's own notation.
func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UnmarshalJSON reads a size string or a plain number of bytes.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		v, err := parseSignedByteSize(s)
		if err != nil {
			return err
		}
		*b = v
		return nil
	}
	var n int64
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("invalid size %s", data)
	}
	*b = ByteSize(n)
	return nil
}

// parseSignedByteSize accepts the negative numbers String can produce, so
// JSON round-trips even a size that validation would reject.
func parseSignedByteSize(s string) (ByteSize, error) {
	if strings.HasPrefix(s, "-") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid size %q", s)
		}
		return ByteSize(n), nil
	}
	return ParseByteSize(s)
}
