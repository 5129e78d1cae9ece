#!/usr/bin/env bash
# The benchmark in one command: installs what is missing (docker-registry, skopeo, GNU time, curl, npm
# packages) and builds regmirror, then runs bench/main.ts, which starts its own registries on loopback,
# runs regmirror and skopeo side by side and writes docs/benchmarks.md (+ docs/benchmarks.svg).
#
#   bash bench/run.sh                           every workload, 3 repetitions (44 min on 2 busy cores)
#   bash bench/run.sh --only mixed,noop --reps 5
#   bash bench/run.sh --help
#
# Never run by CI (scripts/test.sh does not call it). The older chunk-size study of one 256 MiB layer is
# `node --import tsx bench/large-layer.ts` (writes bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  if [ "$arg" = "--help" ] || [ "$arg" = "-h" ]; then exec node --import tsx bench/main.ts --help; fi
done
bash scripts/setup.sh
if ! command -v curl >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends curl >/dev/null
fi
exec node --import tsx bench/main.ts "$@"
