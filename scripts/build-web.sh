#!/usr/bin/env bash
# Builds the web app (study list and viewer, web/dist) that the yunying
# binary embeds at its next build: installs the pinned npm packages
# (npm ci, only when package-lock.json changed), type-checks and bundles.
# Skips the bundle when nothing under web/ changed since the last one.
# Needs Node.js >= 20.19 with npm.
set -euo pipefail
cd "$(dirname "$0")/../web"

if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "build-web: Node.js >= 20.19 is needed (found: $(node --version 2>/dev/null || echo none)); install Node.js 20 LTS" >&2
  exit 1
fi

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f node_modules/.lock.sha256 || "$(cat node_modules/.lock.sha256)" != "$lock_hash" ]]; then
  echo "build-web: installing the pinned npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.lock.sha256
fi

src_hash=$( (find src public -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum index.html package-lock.json vite.config.ts tsconfig.json) | sha256sum | cut -d' ' -f1)
if [[ -f dist/index.html && -f dist/.source.sha256 && "$(cat dist/.source.sha256)" == "$src_hash" ]]; then
  echo "build-web: web/dist is up to date"
  exit 0
fi
echo "build-web: type-checking and bundling"
node node_modules/typescript/bin/tsc --noEmit
node node_modules/vite/bin/vite.js build --logLevel warn
echo "$src_hash" > dist/.source.sha256
# The yunying build embeds dist/ (crates/server/build.rs watches it, or
# index.html while there was no dist).
touch index.html
echo "build-web: web/dist built ($(du -sh dist | cut -f1))"
