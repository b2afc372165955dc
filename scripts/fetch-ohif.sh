#!/usr/bin/env bash
# Fetches the prebuilt OHIF Viewer (npm package @ohif/app, pinned, checked by
# SHA-256) into a cache and prepares a site directory from it: OHIF's dist
# with Yunying's app-config.js (docs/ohif/app-config.js). Prints the site
# directory. Used by the OHIF compatibility test (web/e2e/ohif.test.mjs) and
# described in docs/ohif.md.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.13.2
SHA256=b189d3963bfc58e9394a9db8c7be75d07beb029ec211dbb126d47b62969dd3f1
URL="https://registry.npmjs.org/@ohif/app/-/app-${VERSION}.tgz"
CACHE="${YUNYING_OHIF_CACHE:-$HOME/.cache/yunying/ohif}/${VERSION}"
mkdir -p "$CACHE"
if [[ ! -f "$CACHE/package/dist/index.html" ]]; then
  echo "fetch-ohif: downloading @ohif/app ${VERSION}" >&2
  curl -fsSL --retry 3 -o "$CACHE/app.tgz.part" "$URL"
  echo "$SHA256  $CACHE/app.tgz.part" | sha256sum -c --quiet -
  rm -rf "$CACHE/package"
  tar xzf "$CACHE/app.tgz.part" -C "$CACHE"
  rm "$CACHE/app.tgz.part"
fi
SITE="$CACHE/site"
rm -rf "$SITE"
mkdir -p "$SITE"
for f in "$CACHE/package/dist/"*; do
  name=$(basename "$f")
  [[ "$name" == app-config.js ]] || ln -s "$f" "$SITE/$name"
done
cp docs/ohif/app-config.js "$SITE/app-config.js"
echo "$SITE"
