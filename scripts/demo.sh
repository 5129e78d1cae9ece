#!/usr/bin/env bash
# The regmirror demo in one command, on a fresh Debian/Ubuntu machine: installs what is missing
# (docker-registry, skopeo, npm packages), builds, then mirrors a multi-arch image between three
# local registries with the real CLI and checks the result. No terminal or prompts needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx scripts/demo.ts "$@"
