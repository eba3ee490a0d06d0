#!/usr/bin/env bash
# Runs every test of Aegis on a fresh machine: installs the C-to-wasm
# toolchain the tests build C functions with (when missing), then vets and
# tests the platform, the Go SDK and the examples. Wasm fixtures are built
# once per run and shared across test packages.
set -euo pipefail
cd "$(dirname "$0")/.."
# The vault's master key lives by default under the user's config directory
# (docs/vault.md): the servers the tests start share one of their own there,
# never the machine's.
XDG_CONFIG_HOME="$(mktemp -d)"
export XDG_CONFIG_HOME
trap 'rm -rf "$XDG_CONFIG_HOME"' EXIT

need_wasm_c() {
  printf 'int main(void){return 0;}\n' >/tmp/aegis-probe.c
  ! clang --target=wasm32-wasi -O2 -o /tmp/aegis-probe.wasm /tmp/aegis-probe.c >/dev/null 2>&1
}
if need_wasm_c || ! command -v wrk >/dev/null; then
  echo "== installing clang, lld, wasi-libc (C functions) and wrk (benchmark harness)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang lld wasi-libc wrk >/dev/null
  # The wasm32 builtins come in a package named after clang's major version
  # (14 on Debian 12), so ask the clang just installed which one it needs.
  clang_major=$(clang -dumpversion | cut -d. -f1)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "libclang-rt-${clang_major}-dev-wasm32" >/dev/null
  if need_wasm_c; then echo "clang still cannot build wasm32-wasi programs"; exit 1; fi
fi

# Rust functions (sdk/rust, examples/hello-rust) build with a rustc that has
# the wasm32-wasip1 (or, before rustc 1.78, wasm32-wasi) standard library,
# as aegis build looks for one (internal/build/cargo.go): Debian's when
# none is there.
rust_wasm() {
  for r in ${RUSTC:-} "$(command -v rustc || true)" /usr/bin/rustc; do
    [ -x "$r" ] || continue
    sysroot=$("$r" --print sysroot 2>/dev/null) || continue
    for t in wasm32-wasip1 wasm32-wasi; do
      if [ -d "$sysroot/lib/rustlib/$t/lib" ]; then echo "$r"; return 0; fi
    done
  done
  return 1
}
if ! rust_wasm >/dev/null; then
  echo "== installing rustc, cargo and the wasm32-wasi standard library (Rust functions)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rustc cargo libstd-rust-dev-wasm32 >/dev/null
  if ! rust_wasm >/dev/null; then echo "rustc still cannot build wasm32-wasi modules"; exit 1; fi
fi
RUST_WASM_RUSTC=$(rust_wasm)

# JavaScript functions (examples/hello-js, aegis new js) build with
# componentize-js from npm (internal/build/js.go). Node.js and npm come from
# Debian when missing; componentize-js is installed once into the user
# cache (about 390 MB) and the tests link its node_modules into the
# functions they build (AEGIS_JS_MODULES), so they use no network.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== installing Node.js and npm (JavaScript functions)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
COMPONENTIZE_JS_VERSION=0.23.0
AEGIS_JS_MODULES="${XDG_CACHE_HOME:-$HOME/.cache}/aegis-test/componentize-js-$COMPONENTIZE_JS_VERSION"
if [ ! -f "$AEGIS_JS_MODULES/node_modules/@bytecodealliance/componentize-js/package.json" ]; then
  echo "== installing componentize-js $COMPONENTIZE_JS_VERSION (JavaScript functions)"
  mkdir -p "$AEGIS_JS_MODULES"
  # A package.json of its own, so npm installs here and not into one
  # found in a parent directory.
  printf '{"private": true}\n' >"$AEGIS_JS_MODULES/package.json"
  (cd "$AEGIS_JS_MODULES" && npm install --no-audit --no-fund --loglevel=error "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >/dev/null)
fi
export AEGIS_JS_MODULES
# The tests that build JavaScript fail rather than skip without it.
export AEGIS_REQUIRE_JS=1

# The web console's tests drive a real headless browser (internal/testkit/browser):
# Debian's Chromium, when missing. It only ever loads pages from loopback.
if [ ! -x "${AEGIS_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "== installing Chromium (the console's browser tests)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  if [ ! -x "${AEGIS_CHROMIUM:-/usr/bin/chromium}" ]; then echo "Chromium still missing at ${AEGIS_CHROMIUM:-/usr/bin/chromium}"; exit 1; fi
fi
# The browser tests fail rather than skip without it.
export AEGIS_REQUIRE_BROWSER=1

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go vet"
go vet ./...
# The sandbox builds with a second engine (RATIONALE.md): it is checked too.
go vet -tags aegis_wazero ./internal/sandbox/ ./bench/ ./cmd/aegis/
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -tags aegis_wazero ./internal/sandbox/
(cd sdk/go && go vet ./... && GOOS=wasip1 GOARCH=wasm go vet ./...)


echo "== go test (platform)"
go test -count=1 -timeout 12m $(go list ./... | grep -v /internal/e2e)

# The end-to-end tests and the packages with goroutines of their own run under
# the race detector: they start real servers and hammer pools, keys and routes.
echo "== go test -race (end to end, and concurrency-heavy packages)"
# (internal/jetstream runs without it: under the race detector the embedded
# NATS server intermittently fails to create a stream's file store.)
# The tests that deploy many or large modules of their own (the travel diary
# and its traces, `aegis up`, `aegis new`, the CLI tour, the documented commands,
# the JavaScript components with their 13 MB engine) run without
# it: under the race detector most of their time is the module compiler's,
# which is not our code, and the server paths they take are the ones the other
# tests race-check already. So do the three-member clusters (TestCluster,
# TestClusterStatusMetaLeader): three embedded NATS cluster members in one process
# under the race detector start and settle too slowly for their waits, and the
# two-server tests race-check the paths they share.
slow_compiles='TestCluster|TestClusterStatusMetaLeader|TestTravelDiary|TestTraceTravelDiary|TestTraceStartsAtTheGateway|TestUp|TestUpTravelDiary|TestBackupRestore|TestUpTLS|TestCLIAgainstRealServer|TestDocumentedCommandsRun|TestNewGoFunctionOffline|TestNewCFunction|TestJSComponent|TestNewJSFunction'
go test -count=1 -race -timeout 12m -skip "^($slow_compiles)\$" ./internal/e2e/ ./internal/sandbox/ ./internal/auth/ ./internal/route/ \
  ./internal/admin/ ./internal/bus/ ./internal/capability/ ./internal/cli/ ./internal/gateway/ ./internal/registry/ ./internal/schema/
go test -count=1 -timeout 10m -run "^($slow_compiles)\$" ./internal/e2e/

# wazero stays one build tag away from the default engine: the sandbox's own
# tests (containment, limits, timeouts, spec suite) and the end-to-end
# containment tests run on it as well. The default build's TestEnginesAgree
# already compared the two engines' answers to the same guests.
echo "== go test -tags aegis_wazero (the other engine)"
go test -count=1 -timeout 10m -tags aegis_wazero ./internal/sandbox/
go test -count=1 -timeout 10m -tags aegis_wazero -run '^(TestContainment|TestSizeCaps|TestErrorHygiene)$' ./internal/e2e/

echo "== go test (sdk and examples)"
(cd sdk/go && go test -count=1 ./...)
# The Rust SDK's own tests, with the cargo of the toolchain found above;
# its build directory is a temporary one, never the source tree.
rust_target=$(mktemp -d)
(cd sdk/rust && RUSTC="$RUST_WASM_RUSTC" "$(dirname "$RUST_WASM_RUSTC")/cargo" test -q --target-dir "$rust_target")
rm -rf "$rust_target"
for ex in examples/travel-diary examples/echo; do
  (cd "$ex" && go test -count=1 ./...)
done

# Quick mode checks that every benchmark scenario still runs; it measures
# nothing worth reading (docs/performance.md has the full-run figures).
echo "== benchmark harness (quick mode)"
go run ./bench -quick -out "$(mktemp -d)"
