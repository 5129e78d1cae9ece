#!/usr/bin/env bash
# Sets up everything the tests need, then runs lint, type checks, unit and integration tests, and the
# packed package installed and run (scripts/pack-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx biome check src test bin bench scripts
npx tsc -p tsconfig.test.json
node scripts/run-tests.mjs
# The package as users install it: packed, installed into a temporary prefix, run.
bash scripts/pack-check.sh
