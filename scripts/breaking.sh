#!/usr/bin/env bash
# buf breaking: the API in proto/ against the commit it builds on, so that an incompatible
# change (a field renumbered, an RPC removed, a JSON name changed, a file option the generated
# clients depend on) cannot land unnoticed. The rules are buf.yaml's `breaking` section (FILE).
#
# The base is the newest commit of main this commit does not contain when it is on a branch
# (its merge base with main), or main's previous commit when it is main itself (first
# parent, so a merge is compared with main as it was before it). Needs the git history
# (a full clone, not --depth 1).
set -euo pipefail
cd "$(dirname "$0")/.."

main=""
for ref in main origin/main; do
  if git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then main=$ref; break; fi
done
base=""
if [ -n "$main" ]; then base=$(git merge-base HEAD "$main" || true); fi
if [ -z "$base" ] || [ "$base" = "$(git rev-parse HEAD)" ]; then
  base=$(git rev-parse --verify --quiet 'HEAD^1^{commit}' || true)
fi
if [ -z "$base" ]; then
  echo "buf breaking: no earlier commit to compare with (first commit): nothing to check"
  exit 0
fi
if ! git cat-file -e "$base:buf.yaml" 2>/dev/null; then
  echo "buf breaking: $base has no buf.yaml (the API did not exist yet): nothing to check"
  exit 0
fi

echo "buf breaking against $(git log -1 --format='%h %s' "$base")"
config=()
# The file options for other languages' generators (go_package, java_package, ...) were first
# set after the API existed; setting them where they were empty breaks no one.
if ! git show "$base:proto/refunds/v1/refund_service.proto" | grep -q '^option go_package'; then
  echo "(the base predates the file options: their first setting is not checked)"
  config=(--config '{"version":"v2","modules":[{"path":"proto"}],"breaking":{"use":["FILE"],"except":["FILE_SAME_GO_PACKAGE","FILE_SAME_JAVA_PACKAGE","FILE_SAME_JAVA_MULTIPLE_FILES","FILE_SAME_CSHARP_NAMESPACE"]}}')
fi
buf breaking "${config[@]}" --against ".git#ref=$base"
