#!/usr/bin/env bash
# Refresh the vendored ES module builds from the npm registry (no CDN at run time).
# Bump the versions here, run this script, and commit what it writes.
set -euo pipefail
MARKED=18.2.1
DOMPURIFY=3.4.18
HIGHLIGHT=11.12.0 # @highlightjs/cdn-assets: the browser ES modules of highlight.js
# The languages answers most often show; each registers its own aliases (js, py, sh, html…).
LANGUAGES="bash c cpp css diff go java javascript json markdown python rust shell sql typescript xml yaml"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "marked@$MARKED" "dompurify@$DOMPURIFY" "@highlightjs/cdn-assets@$HIGHLIGHT" >/dev/null
mkdir marked dompurify highlight
tar xzf "marked-$MARKED.tgz" -C marked
tar xzf "dompurify-$DOMPURIFY.tgz" -C dompurify
tar xzf "highlightjs-cdn-assets-$HIGHLIGHT.tgz" -C highlight
cp marked/package/lib/marked.esm.js "$here/marked.esm.js"
cp marked/package/LICENSE "$here/LICENSE.marked"
cp dompurify/package/dist/purify.es.mjs "$here/purify.esm.js"
cp dompurify/package/LICENSE "$here/LICENSE.dompurify"
rm -rf "$here/highlight"
mkdir -p "$here/highlight/languages"
cp highlight/package/es/core.js "$here/highlight/core.js"
for language in $LANGUAGES; do
  cp "highlight/package/es/languages/$language.min.js" "$here/highlight/languages/$language.min.js"
done
cp highlight/package/LICENSE "$here/LICENSE.highlight.js"
echo "marked $MARKED, dompurify $DOMPURIFY, highlight.js $HIGHLIGHT ($LANGUAGES)" > "$here/VERSIONS"
