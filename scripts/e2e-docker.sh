#!/usr/bin/env bash
# Docker end-to-end test of the deployment (deploy/compose/docker-compose.yml).
#
#   scripts/e2e-docker.sh
#
# 1. Builds the static binaries and a throw-away image (scripts/build-images.sh).
# 2. Training run: `docker-compose up --exit-code-from coordinator` with a
#    coordinator and 3 worker replicas on a short MNIST 1-vs-2 run
#    (RINGTRAIN_STEPS=30); checks the exit code, the four outputs copied out of
#    the named volume, summary.json (world_size 3, steps, test accuracy above a
#    floor), that every worker stopped cleanly, and the container hardening
#    (numeric user, read-only root file system).
# 3. Shutdown run: a longer run in the background; SIGTERM to one worker must
#    make it leave the gossip cluster gracefully (the coordinator logs
#    failed=false and re-forms the ring with 2 workers well before failure
#    detection would); then SIGTERM to the coordinator must make it write its
#    outputs (summary.json with world_size 2) before exiting.
#    While that run trains, both programs' Prometheus endpoints (:9090,
#    plain HTTP) must answer /metrics and /healthz.
# 4. Secure run (deploy/compose/docker-compose.secure.yml): secrets from
#    deploy/gen-secrets.sh; the run must complete with mTLS and encrypted
#    gossip (world_size 3), while a plaintext health check of the coordinator
#    is refused, a worker without the gossip key cannot join the gossip
#    cluster, and a worker with the gossip key but no certificate cannot join
#    the run (TLS handshake refused).
# 5. Always tears down (trap on EXIT): `down -v --remove-orphans`, removes the
#    image, and fails if any container, network or volume of the project is
#    left behind.
#
# Every docker command that can hang runs under `timeout`; waits poll with
# deadlines. Needs Docker, docker-compose (v1) or `docker compose` (v2), and Go.
#
# Environment:
#   E2E_ACCURACY_FLOOR  minimum test accuracy of the 30-step run (default 0.9)
#   E2E_KEEP_IMAGE=1    keep the image (default: removed at the end)
#   E2E_COMPOSE         the compose command, e.g. "docker compose" (default:
#                       docker-compose if installed, else docker compose)
set -euo pipefail
cd "$(dirname "$0")/.."

E2E_NAME=e2e
# shellcheck source=scripts/lib/e2e-common.sh
source scripts/lib/e2e-common.sh

log "compose tool: ${compose_cmd[*]} ($("${compose_cmd[@]}" version --short 2>/dev/null || echo unknown version))"

floor=${E2E_ACCURACY_FLOOR:-0.9}
project="ringtrain-e2e-$$-$(date +%s)"
image="ringtrain:e2e-$$-$(date +%s)"
compose_file=deploy/compose/docker-compose.yml
work=$(mktemp -d "${TMPDIR:-/tmp}/ringtrain-e2e.XXXXXX")
export RINGTRAIN_IMAGE=$image
# The trap may run while a command's output is redirected to a file; it
# writes to the script's own stdout and stderr, saved here.
exec 3>&1 4>&2



teardown() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  exec 1>&3 2>&4
  stop_child
  log "tearing down project $project"
  timeout 30 docker rm -f "$project-intruder-1" "$project-intruder-2" >/dev/null 2>&1
  compose 120 down -v --remove-orphans --timeout 10 >"$work/down.log" 2>&1 \
    || { echo "compose down failed:"; cat "$work/down.log"; }
  if [[ ${E2E_KEEP_IMAGE:-0} != 1 ]]; then
    timeout 60 docker rmi -f "$image" >/dev/null 2>&1
  fi
  local left
  left=$(
    timeout 30 docker ps -aq --filter "label=com.docker.compose.project=$project"
    timeout 30 docker network ls -q --filter "label=com.docker.compose.project=$project"
    timeout 30 docker volume ls -q --filter "label=com.docker.compose.project=$project"
  )
  if [[ -n $left ]]; then
    echo "[e2e] FAIL: left behind by project $project: $left" >&2
    rc=1
  fi
  rm -rf "$work"
  if [[ $rc -eq 0 ]]; then
    log "PASS (nothing left behind)"
  else
    log "FAILED with exit code $rc"
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# json_field FILE NAME prints a scalar field of a summary.json written by the
# coordinator (pretty-printed, one field per line); no jq needed.
json_field() {
  awk -v key="\"$2\":" '$1 == key { v = $2; sub(/,$/, "", v); gsub(/"/, "", v); print v; exit }' "$1"
}

# has_log CONTAINER REGEX: the container's log has a line matching the
# extended regular expression. The log is read whole first: `docker logs |
# grep -q` would kill docker logs with SIGPIPE, a failure under pipefail.
has_log() {
  local out
  out=$(timeout 20 docker logs "$1" 2>&1) || return 1
  grep -Eq -- "$2" <<<"$out"
}

# wait_log CONTAINER PATTERN SECONDS waits until the container's log has a
# line matching the extended regular expression.
wait_log() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if has_log "$1" "$2"; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

# copy_outputs CONTAINER DIR copies /out of a (stopped) container, volume
# included; there is no shell in the image, so docker cp is the way out.
copy_outputs() {
  mkdir -p "$2"
  timeout 60 docker cp "$1:/out/." "$2/" || fail "docker cp $1:/out failed"
}

# http_get HOST PORT PATH prints the response (headers and body) of a plain
# HTTP GET, with bash's /dev/tcp (no curl needed).
http_get() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 10 bash -c 'exec 5<>"/dev/tcp/$0/$1" && printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&5 && cat <&5' "$1" "$2" "$3"
}

# ip_of CONTAINER prints the container's address on its (only) network.
ip_of() {
  timeout 30 docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"
}

dump_logs() {
  echo "---- compose logs (last 60 lines) ----" >&2
  compose 60 logs --no-color 2>&1 | tail -n 60 >&2 || true
}

# ---------------------------------------------------------------- build
log "building binaries and image $image"
RINGTRAIN_IMAGE=$image bounded 1200 bash scripts/build-images.sh

user=$(timeout 30 docker image inspect --format '{{.Config.User}}' "$image")
[[ $user =~ ^[0-9]+(:[0-9]+)?$ && ${user%%:*} != 0 ]] || fail "image user is '$user', want a numeric non-root user"

# ---------------------------------------------------------------- training run
log "training run: coordinator + 3 workers, 30 steps of MNIST 1-vs-2"
start=$SECONDS
if ! RINGTRAIN_STEPS=30 RINGTRAIN_MIN_WORKERS=3 compose 240 up --no-color --exit-code-from coordinator \
  --scale worker=3 >"$work/up.log" 2>&1; then
  tail -n 60 "$work/up.log" >&2
  fail "docker-compose up --exit-code-from coordinator did not exit 0"
fi
log "run finished in $((SECONDS - start)) s"

coord=$(containers coordinator)
[[ -n $coord ]] || fail "no coordinator container"
[[ $(timeout 30 docker inspect -f '{{.State.ExitCode}}' "$coord") == 0 ]] || fail "coordinator exit code is not 0"
[[ $(timeout 30 docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$coord") == true ]] || fail "coordinator root file system is not read-only"
workers=$(containers worker)
[[ $(wc -w <<<"$workers") -eq 3 ]] || fail "want 3 worker containers, have: $workers"
for w in $workers; do
  code=$(timeout 30 docker inspect -f '{{.State.ExitCode}}' "$w")
  [[ $code == 0 ]] || fail "worker $w exited with $code after SIGTERM, want 0"
  has_log "$w" 'msg="worker stopped"' || fail "worker $w did not log a clean stop"
done

copy_outputs "$coord" "$work/out1"
for f in summary.json metrics.csv model.safetensors learning_curve.png; do
  [[ -s $work/out1/$f ]] || fail "output $f is missing or empty"
done
world=$(json_field "$work/out1/summary.json" world_size)
steps=$(json_field "$work/out1/summary.json" steps)
acc=$(json_field "$work/out1/summary.json" test_accuracy)
log "summary.json: world_size=$world steps=$steps test_accuracy=$acc"
[[ $world == 3 ]] || fail "world_size is '$world', want 3"
[[ $steps == 30 ]] || fail "steps is '$steps', want 30"
awk -v a="$acc" -v f="$floor" 'BEGIN { exit !(a + 0 >= f + 0 && a != "") }' \
  || fail "test accuracy '$acc' is below the floor $floor"

compose 120 down -v --remove-orphans --timeout 10 >"$work/down1.log" 2>&1 || { cat "$work/down1.log"; fail "compose down"; }

# ---------------------------------------------------------------- shutdown run
log "shutdown run: SIGTERM to a worker, then to the coordinator"
RINGTRAIN_EPOCHS=50 RINGTRAIN_STEPS=0 RINGTRAIN_MIN_WORKERS=2 compose 180 up -d --no-color --scale worker=3 \
  >"$work/up2.log" 2>&1 || { cat "$work/up2.log"; fail "compose up -d"; }
coord=$(containers coordinator)
wait_log "$coord" 'msg="ring formed".* workers=3' 60 || { dump_logs; fail "no ring of 3 workers within 60 s"; }
# The metrics endpoints answer while training runs (plain HTTP on :9090).
for c in "$coord" $(containers worker); do
  page=$(http_get "$(ip_of "$c")" 9090 /metrics) || fail "GET /metrics of $c failed"
  grep -q '^HTTP/1.[01] 200' <<<"$page" || fail "GET /metrics of $c: $(head -n 1 <<<"$page")"
  grep -q '^ringtrain_' <<<"$page" || fail "/metrics of $c has no ringtrain_ series"
  [[ $(http_get "$(ip_of "$c")" 9090 /healthz | tail -n 1) == ok ]] || fail "/healthz of $c is not ok"
done
has_log "$coord" 'msg="metrics served"' || fail "the coordinator did not log its metrics address"
page=$(http_get "$(ip_of "$coord")" 9090 /metrics)
log "metrics: coordinator and workers answer /metrics and /healthz on :9090 ($(grep -c '^ringtrain_' <<<"$page") ringtrain_ samples from the coordinator)"
victim=$(containers worker)
victim=${victim%%$'\n'*}
victim_log=$(timeout 20 docker logs "$victim" 2>&1)
victim_id=$(sed -n 's/.*msg="worker started" worker=\([^ ]*\).*/\1/p' <<<"$victim_log")
victim_id=${victim_id%%$'\n'*}
[[ -n $victim_id ]] || { dump_logs; fail "cannot read the worker id of $victim"; }
t0=$SECONDS
bounded 60 docker stop -t 15 "$victim" >/dev/null || fail "docker stop $victim"
[[ $(timeout 30 docker inspect -f '{{.State.ExitCode}}' "$victim") == 0 ]] || fail "stopped worker did not exit 0"
wait_log "$coord" "msg=\"worker left the cluster\" worker=$victim_id failed=false" 10 \
  || { dump_logs; fail "the coordinator did not see worker $victim_id leave gracefully (failed=false) within 10 s"; }
wait_log "$coord" 'msg="ring formed".* workers=2' 20 || { dump_logs; fail "the ring did not re-form with 2 workers"; }
log "worker $victim_id left gracefully; ring re-formed with 2 workers $((SECONDS - t0)) s after SIGTERM"

bounded 90 docker stop -t 60 "$coord" >/dev/null || fail "docker stop coordinator"
code=$(timeout 30 docker inspect -f '{{.State.ExitCode}}' "$coord")
has_log "$coord" 'msg="outputs written"' || { dump_logs; fail "the coordinator did not write its outputs on SIGTERM"; }
copy_outputs "$coord" "$work/out2"
[[ -s $work/out2/summary.json && -s $work/out2/model.safetensors ]] || fail "outputs missing after SIGTERM"
world=$(json_field "$work/out2/summary.json" world_size)
steps=$(json_field "$work/out2/summary.json" steps)
log "coordinator exited with $code after SIGTERM; summary.json: world_size=$world steps=$steps"
# 50 epochs cannot end before the SIGTERM: 143 says "interrupted, outputs and
# checkpoint saved, resumable" (README, "Exit codes").
[[ $code == 143 ]] || fail "the coordinator exited $code after SIGTERM, want 143 (interrupted and resumable)"
[[ $world == 2 ]] || fail "world_size after the worker left is '$world', want 2"
[[ $steps =~ ^[0-9]+$ && $steps -gt 0 ]] || fail "steps after SIGTERM is '$steps', want > 0"

compose 120 down -v --remove-orphans --timeout 10 >"$work/down2.log" 2>&1 || { cat "$work/down2.log"; fail "compose down"; }

# ---------------------------------------------------------------- secure run
log "secure run: mTLS and encrypted gossip (docker-compose.secure.yml), 60 steps"
bash deploy/gen-secrets.sh "$work/secrets" >"$work/secrets.log" 2>&1 || { cat "$work/secrets.log"; fail "deploy/gen-secrets.sh"; }
export RINGTRAIN_SECRETS_DIR=$work/secrets
compose_file_secure=deploy/compose/docker-compose.secure.yml
secure() {
  local t=$1
  shift
  bounded "$t" "${compose_cmd[@]}" -p "$project" -f "$compose_file" -f "$compose_file_secure" "$@"
}
RINGTRAIN_STEPS=60 RINGTRAIN_MIN_WORKERS=3 secure 180 up -d --no-color --scale worker=3 >"$work/up3.log" 2>&1 \
  || { cat "$work/up3.log"; fail "compose up -d (secure)"; }
coord=$(containers coordinator)
wait_log "$coord" 'msg="ring formed".* workers=3' 60 || { dump_logs; fail "no ring of 3 workers within 60 s (secure)"; }
# shellcheck disable=SC2016 # a Go template, not shell
net=$(timeout 30 docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$coord")
# A plaintext client is refused by the coordinator's gRPC server.
if timeout 30 docker run --rm --network "$net" --read-only --user 65532:65532 "$image" \
  /usr/local/bin/coordinator healthcheck --addr coordinator:7070 --timeout 3s >"$work/plain-hc.log" 2>&1; then
  fail "a plaintext health check of the TLS coordinator succeeded"
fi
log "plaintext health check refused: $(head -c 150 "$work/plain-hc.log")"
# Intruders: no gossip key at all; the gossip key but no certificate.
timeout 30 docker run -d --name "$project-intruder-1" --label "com.docker.compose.project=$project" \
  --network "$net" --read-only --user 65532:65532 "$image" \
  /usr/local/bin/worker --join=coordinator:7946 --ring-socket-dir= >/dev/null || fail "docker run intruder 1"
timeout 30 docker run -d --name "$project-intruder-2" --label "com.docker.compose.project=$project" \
  --network "$net" --read-only --user 65532:65532 -v "$work/secrets/gossip.key:/run/secrets/gossip_key:ro" "$image" \
  /usr/local/bin/worker --join=coordinator:7946 --ring-socket-dir= --gossip-key-file=/run/secrets/gossip_key >/dev/null \
  || fail "docker run intruder 2"
wait_log "$project-intruder-1" 'remote state is encrypted and encryption is not configured' 30 \
  || { timeout 20 docker logs "$project-intruder-1" 2>&1 | tail -5; fail "intruder 1 (no gossip key) did not fail to join as expected"; }
wait_log "$project-intruder-2" 'msg="waiting for the coordinator".*join coordinator' 30 \
  || { timeout 20 docker logs "$project-intruder-2" 2>&1 | tail -5; fail "intruder 2 (no certificate) did not fail to join the run as expected"; }
log "intruders refused: no gossip key (gossip join refused), gossip key without certificate (gRPC join refused)"
code=$(bounded 180 docker wait "$coord") || { dump_logs; fail "the secure run did not finish within 180 s"; }
[[ $code == 0 ]] || { dump_logs; fail "the secure run's coordinator exited with $code"; }
joined=$(timeout 20 docker logs "$coord" 2>&1 | grep -c 'msg="worker joined"' || true)
[[ $joined == 3 ]] || fail "the coordinator admitted $joined workers, want the 3 of the project (an intruder got in?)"
copy_outputs "$coord" "$work/out3"
world=$(json_field "$work/out3/summary.json" world_size)
steps=$(json_field "$work/out3/summary.json" steps)
acc=$(json_field "$work/out3/summary.json" test_accuracy)
log "secure run: summary.json world_size=$world steps=$steps test_accuracy=$acc"
[[ $world == 3 && $steps == 60 ]] || fail "secure run: world_size '$world' steps '$steps', want 3 and 60"
awk -v a="$acc" -v f="$floor" 'BEGIN { exit !(a + 0 >= f + 0 && a != "") }' \
  || fail "secure run: test accuracy '$acc' is below the floor $floor"
timeout 30 docker rm -f "$project-intruder-1" "$project-intruder-2" >/dev/null 2>&1
