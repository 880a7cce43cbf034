#!/usr/bin/env bash
# Builds the static binaries and the runtime image from a fresh clone.
#
#   scripts/build-images.sh                 # binaries in bin/, image ringtrain:dev
#   RINGTRAIN_IMAGE=ringtrain:v1 scripts/build-images.sh
#   scripts/build-images.sh --binaries-only # no Docker needed
#
# Environment:
#   RINGTRAIN_IMAGE  image name and tag (default ringtrain:dev; the compose
#                    file and the Kubernetes base use the same default)
#   BIN_DIR          where the binaries go (default bin/, ignored by git)
#   GOARCH           target architecture (default: the host's)
#
# The binaries are static (CGO_ENABLED=0) and reproducible (-trimpath); the
# image is FROM scratch and built with the legacy builder (DOCKER_BUILDKIT=0),
# so neither buildx nor a registry is needed. See docs/deploy.md.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${RINGTRAIN_IMAGE:-ringtrain:dev}
bin_dir=${BIN_DIR:-bin}
binaries_only=false
for arg in "$@"; do
  case $arg in
    --binaries-only) binaries_only=true ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "build-images.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)

echo "building static binaries into $bin_dir/ (CGO_ENABLED=0)"
mkdir -p "$bin_dir"
CGO_ENABLED=0 GOOS=linux timeout 900 go build -trimpath -ldflags '-s -w' -o "$bin_dir/" ./cmd/coordinator ./cmd/worker
for b in coordinator worker; do
  if ! "$bin_dir/$b" --help >/dev/null 2>&1; then
    echo "build-images.sh: $bin_dir/$b does not run on this host (cross-built?)" >&2
  fi
done
$binaries_only && { echo "binaries: $bin_dir/coordinator $bin_dir/worker"; exit 0; }

command -v docker >/dev/null || { echo "build-images.sh: docker is not installed (use --binaries-only)" >&2; exit 1; }

# The build context holds only what the image needs (see deploy/Dockerfile).
ctx=$(mktemp -d "${TMPDIR:-/tmp}/ringtrain-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/usr/local/bin" "$ctx/out" "$ctx/tmp"
chmod 0755 "$ctx/usr" "$ctx/usr/local" "$ctx/usr/local/bin" "$ctx/out"
chmod 1777 "$ctx/tmp"
install -m 0755 "$bin_dir/coordinator" "$bin_dir/worker" "$ctx/usr/local/bin/"

echo "building image $image (legacy builder, FROM scratch)"
# The legacy builder warns that it is deprecated; show its output only when
# the build fails.
if ! log=$(DOCKER_BUILDKIT=0 timeout 600 docker build \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  -f deploy/Dockerfile -t "$image" "$ctx" 2>&1); then
  echo "$log" >&2
  echo "build-images.sh: docker build of $image failed" >&2
  exit 1
fi
docker image inspect --format 'image {{index .RepoTags 0}}: {{.Size}} bytes, user {{.Config.User}}' "$image"
