// Package githubactions holds a GitHub Actions workflow that runs the
// deploy gate (aegis scan) on every push and pull request and uploads its
// SARIF log to code scanning (aegis-scan.yml beside this file), and the
// test that checks the workflow's aegis command lines parse with the real
// command line. It has no code of its own: nothing imports it.
package githubactions
