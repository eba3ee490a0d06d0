package aegisplatform

import (
	"strings"
	"testing"
)

// The version a world names must be the one the file declares.
func TestVersionMatchesTheFile(t *testing.T) {
	if want := "package aegis:platform@" + Version + ";"; !strings.Contains(string(WIT), "\n"+want+"\n") {
		t.Errorf("platform.wit does not declare %q", want)
	}
	if !strings.Contains(string(WIT), "\nworld function {") {
		t.Error("platform.wit has no world function")
	}
}
