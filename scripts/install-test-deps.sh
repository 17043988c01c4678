#!/usr/bin/env bash
# Installs what the tests need on a Debian machine: the Debian packages listed in
# scripts/test-deps.mjs (apt-get, as root) and the real-kernel fixtures (scripts/fetch-fixtures.sh,
# through this machine's configured apt sources). Idempotent: installs only what is missing and
# leaves a complete fixture cache alone. The README's test line runs it before `npm ci && npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "install-test-deps: node is required (Node.js >= 20.19)" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then exec sudo -E bash "$0" "$@"; fi
  echo "install-test-deps: run as root (apt-get install)" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
mapfile -t packages < <(node scripts/test-deps.mjs packages)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash scripts/fetch-fixtures.sh
