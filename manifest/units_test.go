package manifest

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    Duration
		wantErr bool
	}{
		{in: "2s", want: Duration(2 * time.Second)},
		{in: "150ms", want: Duration(150 * time.Millisecond)},
		{in: "1m30s", want: Duration(90 * time.Second)},
		{in: "0", want: 0},
		{in: " 5s ", want: Duration(5 * time.Second)},
		{in: "5", wantErr: true},
		{in: "2x", wantErr: true},
		{in: "", wantErr: true},
		{in: "1e3s", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	equal(t, Duration(1500*time.Millisecond).Std(), 1500*time.Millisecond)
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr bool
	}{
		{in: "64MiB", want: 64 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "1MB", want: 1_000_000},
		{in: "1GB", want: 1_000_000_000},
		{in: "4GiB", want: 4 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: "1TB", want: 1e12},
		{in: "1048576", want: 1 << 20},
		{in: "10B", want: 10},
		{in: "64 mib", want: 64 << 20},
		{in: "0", want: 0},
		{in: "", wantErr: true},
		{in: "MiB", wantErr: true},
		{in: "-1MiB", wantErr: true},
		{in: "1.5GiB", wantErr: true},
		{in: "64MiBs", wantErr: true},
		{in: "1 2MiB", wantErr: true},
		{in: "9999999999TiB", wantErr: true},
		{in: "99999999999999999999", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v, error %v", tt.in, int64(got), err, int64(tt.want), tt.wantErr)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1023, "1023"},
		{KiB, "1KiB"},
		{64 * MiB, "64MiB"},
		{1000 * KiB, "1000KiB"}, // as short as "1024KB": binary wins
		{MB, "1MB"},
		{TB, "1TB"},
		{1536 * MiB, "1536MiB"},
		{-5, "-5"},
		{math.MaxInt64, "9223372036854775807"},
	}
	for _, tt := range tests {
		equal(t, tt.in.String(), tt.want)
	}
}

// TestUnitsJSON checks the exact round trip the server depends on when it
// stores a manifest as JSON and reads it back.
func TestUnitsJSON(t *testing.T) {
	durations := []Duration{0, 1, Duration(time.Millisecond), Duration(1500 * time.Millisecond),
		Duration(5 * time.Minute), -1, math.MaxInt64, math.MinInt64}
	for _, d := range durations {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var got Duration
		if err := json.Unmarshal(b, &got); err != nil || got != d {
			t.Errorf("Duration %d: JSON %s read back as %d, %v", int64(d), b, int64(got), err)
		}
	}
	sizes := []ByteSize{0, 1, KiB, 64 * MiB, MB, 1000 * KiB, 123456789, -1, math.MaxInt64, math.MinInt64}
	for _, s := range sizes {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var got ByteSize
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Errorf("ByteSize %d: JSON %s read back as %d, %v", int64(s), b, int64(got), err)
		}
	}

	b, _ := json.Marshal(Limits{Timeout: Duration(2 * time.Second), Memory: 64 * MiB})
	equal(t, string(b), `{"timeout":"2s","memory":"64MiB"}`)

	// Plain numbers are accepted too: nanoseconds and bytes.
	var l Limits
	if err := json.Unmarshal([]byte(`{"timeout":2000000000,"memory":1024}`), &l); err != nil {
		t.Fatal(err)
	}
	equal(t, l, Limits{Timeout: Duration(2 * time.Second), Memory: KiB})

	for _, bad := range []string{`{"timeout":"2x"}`, `{"timeout":true}`, `{"memory":"lots"}`, `{"memory":1.5}`} {
		if err := json.Unmarshal([]byte(bad), &l); err == nil {
			t.Errorf("json.Unmarshal(%s) succeeded", bad)
		}
	}
}

// TestUnitsYAML checks the UnmarshalYAML/MarshalYAML methods on their own,
// as used by code that decodes these types with yaml.v3 directly.
func TestUnitsYAML(t *testing.T) {
	var l struct {
		T Duration `yaml:"t"`
		M ByteSize `yaml:"m"`
	}
	if err := yaml.Unmarshal([]byte("t: 150ms\nm: 512KiB\n"), &l); err != nil {
		t.Fatal(err)
	}
	equal(t, l.T, Duration(150*time.Millisecond))
	equal(t, l.M, 512*KiB)
	out, err := yaml.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, string(out), "t: 150ms\nm: 512KiB\n")
	if err := yaml.Unmarshal([]byte("t: [1]\n"), &l); err == nil {
		t.Error("list accepted as a duration")
	}
	if err := yaml.Unmarshal([]byte("m: {a: 1}\n"), &l); err == nil {
		t.Error("mapping accepted as a size")
	}
}
