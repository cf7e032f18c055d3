#!/usr/bin/env bash
# Measures Redis's cost per published event with sseredis and with
# centrifuge's Redis broker, side by side on one redis-server, and prints one
# Markdown report on stdout (progress on stderr).
#
#   bench/rediscost.sh                 2, 4 and 8 nodes; one publisher, 16, and 1,000 events/s; 3 repetitions (about 6 minutes)
#   bench/rediscost.sh -nodes 2 -reps 1
#
# Flags go to "rediscost run" (see bench/README.md). Run it on a quiet
# machine: the report prints the load average before and after.
set -euo pipefail
cd "$(dirname "$0")"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/rediscost" ./cmd/rediscost
"$dir/rediscost" run "$@"
