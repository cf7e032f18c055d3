#!/usr/bin/env bash
# Runs every check and test of every module in this repository: what CI
# runs (.ci/run calls this script). On a fresh Debian machine it installs
# the system packages the tests need, when run as root: Chromium (the
# browser tests) and redis-server (sseredis and examples/cluster); the
# interop module's npm clients come from npm ci.
#
#   ./test.sh              # everything: vet, staticcheck, gofmt, go test -race, soaks, brief fuzzing
#   FUZZTIME=60s ./test.sh # fuzz longer
#   SOAKTIME=2m ./test.sh  # soak longer
#
# It prints a line as each phase starts, with the seconds since it began.
set -euo pipefail
cd "$(dirname "$0")"

# step prints a progress line: the seconds since the script began, then
# what starts now.
step() { printf '== %4ds  %s\n' "$SECONDS" "$*"; }

fuzztime=${FUZZTIME:-5s}
soaktime=${SOAKTIME:-30s}
staticcheck_version=v0.8.2 # staticcheck 2026.2.2; the proxy knows it by its module version

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing chromium (browser tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -f >/dev/null
  else
    echo "test.sh: the browser tests need Debian's chromium: apt-get install chromium" >&2
    exit 1
  fi
fi

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing redis-server (sseredis tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -f >/dev/null
  else
    echo "test.sh: the sseredis tests need Debian's redis-server: apt-get install redis-server" >&2
    exit 1
  fi
fi

step "gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi

# The interop module's tests run npm's SSE clients under Node 20: install
# them exactly as interop/node/package-lock.json pins them. The loop below
# then vets and tests ./interop like every other module.
if ! command -v npm >/dev/null 2>&1; then
  echo "test.sh: the interop tests need Node 20 and npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
step "interop: npm ci"
npm ci --prefix interop/node --no-audit --no-fund --silent

# Every module: the root, then the examples and tools that have their own.
# go test prints nothing about a package until it has finished, so the
# line before it names the packages it runs.
modules=$(find . -name go.mod -not -path './.git/*' -exec dirname {} \; | sort)
n=$(echo "$modules" | wc -l)
i=0
for m in $modules; do
  i=$((i + 1))
  (
    cd "$m"
    step "$m ($i/$n): go vet"
    go vet ./...
    step "$m ($i/$n): staticcheck"
    go run "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version" ./...
    packages=$(go list -f '{{.Dir}}' ./... | sed "s|^$PWD|.|" | paste -sd ' ' -)
    step "$m ($i/$n): go test -race $packages"
    go test -race -count=1 -timeout 20m ./...
    if [ "$m" = . ]; then
      # The hub's tests again, every hub taking its HTTP/1.x connections
      # over from net/http (Config.Hijack).
      step "$m ($i/$n): go test -race . again with -sse.hijack"
      go test -race -count=1 -timeout 20m . -args -sse.hijack
      # And again with Config.Poll as well: no goroutine per idle stream.
      step "$m ($i/$n): go test -race . again with -sse.poll"
      go test -race -count=1 -timeout 20m . -args -sse.poll
    fi
  )
done

step "root: the stdlib-only promise"
if [ "$(go list -m all)" != "github.com/ssehub/sse" ]; then
  echo "the root module must require nothing:" >&2
  go list -m all >&2
  exit 1
fi

# The fault-injection soaks (see RELIABILITY.md), built with the race
# detector: their last line must show nothing lost, duplicated or reset
# without cause, and no goroutine left; the command exits 1 otherwise.
step "soak: one hub ($soaktime, 200 clients)"
(cd bench && go run -race ./cmd/soak -duration "$soaktime" -clients 200)
step "soak: two hubs on one Redis ($soaktime, 200 clients)"
(cd bench && go run -race ./cmd/soak -duration "$soaktime" -clients 200 -redis auto)
step "soak: two hubs on one Redis, idle streams with no goroutine (-poll: Config.Hijack and Poll; $soaktime, 200 clients)"
(cd bench && go run -race ./cmd/soak -duration "$soaktime" -clients 200 -redis auto -poll)

for target in FuzzRoundTrip FuzzDecode FuzzDecodeComments FuzzLastEventID FuzzHandler; do
  step "fuzzing $target ($fuzztime)"
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" .
done
step "fuzzing sseredis FuzzDecodeRecord ($fuzztime)"
(cd sseredis && go test -run '^$' -fuzz '^FuzzDecodeRecord$' -fuzztime "$fuzztime" .)
step "all checks passed"
