#!/usr/bin/env bash
# The operator console's script (console/): installs its npm packages from the lock file,
# regenerates its protobuf code from proto/ (protoc-gen-es), type-checks it and bundles it
# with esbuild into console/dist/console.js, the file the binary embeds. Fails when the
# committed generated code or bundle differs from what this produces (commit both).
#
# Needs: buf, node/npm (.ci/run has them). The browser test (cargo test --test console)
# checks what the bundle does; this checks that it is the bundle of the committed sources.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in buf npm node; do
  command -v "$tool" >/dev/null || { echo "scripts/console.sh needs $tool" >&2; exit 1; }
done

echo "--- console: npm ci"
(cd console && npm ci --no-audit --no-fund --silent)

echo "--- console: generated code (buf generate --template console/buf.gen.yaml)"
rm -rf console/src/gen
buf generate --template console/buf.gen.yaml

echo "--- console: type check and bundle"
(cd console && npm run --silent check && npm run --silent bundle)

if ! git diff --exit-code --stat -- console || [ -n "$(git status --porcelain -- console)" ]; then
  git status --short -- console
  echo "the console's generated code or bundle is stale: run scripts/console.sh and commit console/" >&2
  exit 1
fi
echo "console: generated code and bundle up to date"
