#!/usr/bin/env bash
# Fails (exit 1) when the committed generated Go code under proto/ is stale, i.e.
# differs from what proto/gen.sh produces from the .proto files now.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$here/gen.sh" "$tmp" >/dev/null

# Compare every generated file both ways: changed, missing, and committed-but-orphaned.
stale=0
while IFS= read -r f; do
  rel=${f#"$tmp"/}
  if ! diff -u "$here/../$rel" "$f"; then
    stale=1
  fi
done < <(find "$tmp" -name '*.pb.go' -print | LC_ALL=C sort)
while IFS= read -r f; do
  rel=proto/${f#"$here"/}
  if [ ! -e "$tmp/$rel" ]; then
    echo "check.sh: $rel has no .proto source any more" >&2
    stale=1
  fi
done < <(find "$here" -name '*.pb.go' -print | LC_ALL=C sort)

if [ "$stale" -ne 0 ]; then
  echo "check.sh: generated code under proto/ is STALE: run proto/gen.sh and commit the result" >&2
  exit 1
fi
echo "check.sh: generated code under proto/ is up to date"
