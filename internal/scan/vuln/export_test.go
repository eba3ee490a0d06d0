package vuln

// For the command-line test (package vuln_test, which may import the
// CLI that imports this package).
var (
	FixtureProxy = fixtureProxy
	AppAt        = appAt
)
