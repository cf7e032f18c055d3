#!/usr/bin/env bash
# Runs the side-by-side SSE benchmarks and prints one Markdown report on
# stdout (progress goes to stderr).
#
#   bench/run.sh            full run: 3 repetitions, under 10 minutes on 2 cores
#   bench/run.sh -quick     smoke run: 1 repetition, about a minute
#
# Any other flag goes to "ssebench run" (see bench/README.md), for example
#   bench/run.sh -scenarios a,d -impls raw,ours -json /tmp/results.json
set -euo pipefail
cd "$(dirname "$0")"

# 10,000 streams need 10,000 sockets in the server and in the load
# generator, each a process of its own: raise the soft limit to the hard one.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then
	ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
else
	ulimit -n "$hard"
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10300 ]; then
	echo "run.sh: the open file limit is $(ulimit -n); the full run needs 10,300 (raise the hard limit, e.g. ulimit -Hn 20000 as root); -quick needs 2,300" >&2
fi
if ! command -v taskset >/dev/null; then
	echo "run.sh: taskset (util-linux) not found: server and load generator will share the CPUs" >&2
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/ssebench" ./cmd/ssebench
"$dir/ssebench" run "$@"
