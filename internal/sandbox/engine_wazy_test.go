//go:build !aegis_wazero

package sandbox

import "testing"

// differentialAgainst is the build tag of the engine TestEnginesAgree
// compares this build's with.
const differentialAgainst = "aegis_wazero"

func TestEngineName(t *testing.T) { checkEngineVersion(t, "github.com/samyfodil/wazy", "wazy") }
