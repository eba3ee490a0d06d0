//go:build aegis_wazero

package sandbox

import "testing"

// differentialAgainst is empty: the default build's TestEnginesAgree runs
// this one as its other side.
const differentialAgainst = ""

func TestEngineName(t *testing.T) { checkEngineVersion(t, "github.com/tetratelabs/wazero", "wazero") }
