#!/usr/bin/env bash
# Creates the secrets of a secure ringtrain cluster: a certificate authority,
# one certificate for the coordinator and one that all workers share (every
# certificate carries the SAN "ringtrain" that clients verify, so any address
# works), and a 32-byte gossip encryption key.
#
#   deploy/gen-secrets.sh DIR [--valid-for 8760h]
#
# DIR/      ca.pem coordinator.pem coordinator-key.pem worker.pem
#           worker-key.pem gossip.key   (what the nodes get)
# DIR/ca/   ca.pem ca-key.pem           (the CA: keep ca-key.pem OFF the nodes;
#           it signs new members. Move it offline once you are done.)
#
# Run again on the same DIR: the CA and the gossip key are reused, the node
# certificates are issued anew (delete DIR/gossip.key to rotate the key, DIR/ca
# to replace the CA, which evicts every old certificate).
#
# Modes: DIR and DIR/ca are 0700 (only you can reach the files); the files for
# the nodes are 0444, because the containers run as uid 65532 and compose
# bind-mounts them as they are; run as root, the keys instead belong to 65532
# with mode 0400. For Kubernetes, load them into the Secret the manifests
# mount (docs/security.md):
#   kubectl -n NS create secret generic ringtrain-secrets \
#     --from-file=DIR/ca.pem --from-file=DIR/coordinator.pem --from-file=DIR/coordinator-key.pem \
#     --from-file=DIR/worker.pem --from-file=DIR/worker-key.pem --from-file=DIR/gossip.key
#
# Uses bin/coordinator (scripts/build-images.sh --binaries-only) if present,
# else `go run ./cmd/coordinator`. Needs base64 and /dev/urandom.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

dir=""
valid=8760h
while (($#)); do
  case $1 in
    --valid-for) valid=${2:?--valid-for needs a duration}; shift 2 ;;
    --valid-for=*) valid=${1#*=}; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    -*) echo "gen-secrets.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [[ -z $dir ]] || { echo "gen-secrets.sh: one DIR only" >&2; exit 2; }; dir=$1; shift ;;
  esac
done
[[ -n $dir ]] || { echo "usage: gen-secrets.sh DIR [--valid-for DURATION]" >&2; exit 2; }

if [[ -x $root/bin/coordinator ]]; then
  coordinator=("$root/bin/coordinator")
else
  coordinator=(go -C "$root" run ./cmd/coordinator)
fi

umask 077
mkdir -p "$dir/ca"
chmod 0700 "$dir" "$dir/ca"
dir=$(cd "$dir" && pwd)

# The CA lives in DIR/ca; gen-certs reuses an existing CA there.
if ! log=$("${coordinator[@]}" gen-certs --dir "$dir/ca" --names coordinator,worker --valid-for "$valid" 2>&1); then
  echo "$log" >&2
  echo "gen-secrets.sh: gen-certs failed" >&2
  exit 1
fi
for f in coordinator.pem coordinator-key.pem worker.pem worker-key.pem; do
  mv -f "$dir/ca/$f" "$dir/$f"
done
cp -f "$dir/ca/ca.pem" "$dir/ca.pem"

if [[ ! -s $dir/gossip.key ]]; then
  head -c 32 /dev/urandom | base64 >"$dir/gossip.key"
fi

chmod 0444 "$dir"/ca.pem "$dir"/coordinator.pem "$dir"/worker.pem \
  "$dir"/coordinator-key.pem "$dir"/worker-key.pem "$dir"/gossip.key
if [[ $(id -u) -eq 0 ]]; then
  chown 65532:65532 "$dir"/coordinator-key.pem "$dir"/worker-key.pem "$dir"/gossip.key
  chmod 0400 "$dir"/coordinator-key.pem "$dir"/worker-key.pem "$dir"/gossip.key
fi
echo "secrets in $dir (CA private key in $dir/ca/ca-key.pem: keep it off the nodes)"
ls -l "$dir"
