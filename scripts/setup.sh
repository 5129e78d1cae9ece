#!/usr/bin/env bash
# Installs what regmirror's demo and tests need on a Debian/Ubuntu machine: the distribution registry,
# skopeo (the independent witness), htpasswd and openssl (test auth), strace (counting file opens), zsh
# and fish (completion tests), GNU time (the benchmark), and the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The shells whose completion scripts the tests run (regmirror completion bash|zsh|fish).
command -v zsh >/dev/null 2>&1 || need+=(zsh)
command -v fish >/dev/null 2>&1 || need+=(fish)
# strace: the layout tests count file opens with it, independently of regmirror's own accounting.
command -v strace >/dev/null 2>&1 || need+=(strace)
# GNU time (not the shell keyword): the benchmark reads peak RSS from /usr/bin/time -v.
[ -x /usr/bin/time ] || need+=(time)
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The packaged registry may start as a system service on port 5000; the tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  ${sudo:-} systemctl stop docker-registry || true
fi

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<18)) { console.error("regmirror needs Node.js >= 20.18, this is "+process.version); process.exit(1) }'
if [ -L node_modules ]; then
  # A git worktree sharing another checkout's packages: `npm ci` here would empty the shared directory
  # behind the link (every other worktree's packages with it). Install in the checkout that owns them.
  echo "setup: node_modules is a link to $(readlink node_modules); not reinstalling through it" >&2
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # Exactly the versions package-lock.json pins; the lock is never rewritten.
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
