#!/usr/bin/env bash
# Refresh the vendored ES module builds from the npm registry (no CDN at run time).
# Bump the versions here, run this script, and commit what it writes.
set -euo pipefail
MARKED=18.2.1
DOMPURIFY=3.4.18
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "marked@$MARKED" "dompurify@$DOMPURIFY" >/dev/null
mkdir marked dompurify
tar xzf "marked-$MARKED.tgz" -C marked
tar xzf "dompurify-$DOMPURIFY.tgz" -C dompurify
cp marked/package/lib/marked.esm.js "$here/marked.esm.js"
cp marked/package/LICENSE "$here/LICENSE.marked"
cp dompurify/package/dist/purify.es.mjs "$here/purify.esm.js"
cp dompurify/package/LICENSE "$here/LICENSE.dompurify"
echo "marked $MARKED, dompurify $DOMPURIFY" > "$here/VERSIONS"
