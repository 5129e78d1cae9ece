#!/usr/bin/env bash
# The package as users get it: `npm pack` (prepack builds dist/), the tarball installed into a temporary
# prefix with `npm install -g --prefix`, then test/package/installed.test.ts runs that installed
# `regmirror` (--version, the files it ships, a real copy between local registries, checked with skopeo).
# The install resolves the package's dependencies like a user's install does: from the npm cache, or the
# npm registry for what the cache does not hold.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d "${TMPDIR:-/tmp}/regmirror-pack-XXXXXX")"
trap 'rm -rf "$work"' EXIT
npm pack --silent --pack-destination "$work" >/dev/null
tarball="$(ls "$work"/regmirror-*.tgz)"
npm install --global --prefix "$work/prefix" "$tarball" --prefer-offline --no-audit --no-fund --loglevel=error
"$work/prefix/bin/regmirror" --version
REGMIRROR_TARBALL="$tarball" REGMIRROR_BIN="$work/prefix/bin/regmirror" \
  node --import tsx --test test/package/installed.test.ts
