#!/usr/bin/env bash
# Regenerates the Go code for every .proto file under proto/ with protoc and the
# protoc-gen-go / protoc-gen-go-grpc versions pinned in go.mod (the `tool` block).
#
# Usage: proto/gen.sh [OUT_DIR]
#   OUT_DIR defaults to the repository root (files land next to their .proto,
#   following go_package). proto/check.sh passes a temporary directory.
# Needs: protoc (Debian package protobuf-compiler) and the Go toolchain.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out=${1:-$root}
module=github.com/ringtrain/ringtrain

command -v protoc >/dev/null || { echo "gen.sh: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc)

mapfile -t protos < <(cd "$here" && find . -name '*.proto' -print | sed 's|^\./||' | LC_ALL=C sort)
if [ "${#protos[@]}" -eq 0 ]; then
  echo "gen.sh: no .proto files under $here" >&2
  exit 1
fi

mkdir -p "$out"
(cd "$here" && protoc \
  --proto_path=. \
  --plugin=protoc-gen-go="$bin/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc" \
  --go_out="$out" --go_opt=module="$module" \
  --go-grpc_out="$out" --go-grpc_opt=module="$module" \
  "${protos[@]}")
echo "gen.sh: generated Go code for ${#protos[@]} file(s): ${protos[*]}"
