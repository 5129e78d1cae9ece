#!/usr/bin/env bash
# The large-layer benchmark in one command: installs what is missing (docker-registry, skopeo, time,
# npm packages), builds, then runs bench/large-layer.ts, which writes bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx bench/large-layer.ts "$@"
