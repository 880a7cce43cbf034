#!/usr/bin/env bash
# Docker chaos test of the compose deployment (deploy/compose/docker-compose.yml).
#
#   scripts/e2e-docker-chaos.sh
#
# Three scenarios, each a fresh compose project (coordinator + 3 workers,
# --min-workers 2) on a small MNIST 1-vs-2 run (784-64-1 network, global batch
# 64, a checkpoint every 20 steps) that must run to completion:
#
#   kill       `docker kill` (SIGKILL) of a worker mid-run: the coordinator
#              aborts the step in flight, re-forms the ring with the 2
#              survivors and finishes; summary.json has world_size 2.
#   partition  `docker network disconnect` of a worker mid-run: the step in
#              flight is aborted, training goes on with a ring of 2 while the
#              worker is cut off; `docker network connect` again: the worker is
#              readmitted (the coordinator logs a ring of 3 again) and the run
#              finishes with world_size 3.
#   restart    `docker kill` of the coordinator mid-run, then `docker start` of
#              the same container (same outputs volume): it logs "resuming from
#              checkpoint", the workers rejoin it, and the run finishes.
#
# Every run must end with the coordinator's exit code 0 and a summary.json
# with exactly the planned steps, exactly the samples the schedule trains in
# them (a retried or resumed step counts once), and a test accuracy at least
# the floor. Waits poll the logs with deadlines; every docker command runs
# under `timeout`; a trap tears everything down (`down -v --remove-orphans`)
# and the script fails if a container, network or volume is left behind.
#
# Environment:
#   E2E_IMAGE            an image built already (e.g. by scripts/build-images.sh);
#                        default: build a throw-away one and remove it after
#   E2E_SCENARIOS        which scenarios to run (default "kill partition restart")
#   E2E_ACCURACY_FLOOR   minimum test accuracy (default 0.97)
#   E2E_COMPOSE          the compose command (default: docker-compose if
#                        installed, else docker compose)
set -euo pipefail
cd "$(dirname "$0")/.."

E2E_NAME=chaos
# shellcheck source=scripts/lib/e2e-common.sh
source scripts/lib/e2e-common.sh


floor=${E2E_ACCURACY_FLOOR:-0.97}
scenarios=${E2E_SCENARIOS:-kill partition restart}
tag="$$-$(date +%s)"
compose_file=deploy/compose/docker-compose.yml
work=$(mktemp -d "${TMPDIR:-/tmp}/ringtrain-chaos.XXXXXX")
own_image=false
if [[ -n ${E2E_IMAGE:-} ]]; then
  image=$E2E_IMAGE
else
  image="ringtrain:chaos-$tag"
  own_image=true
fi
export RINGTRAIN_IMAGE=$image
# The run every scenario uses (see the header).
export RINGTRAIN_DATASET=mnist-1v2 RINGTRAIN_HIDDEN=64 RINGTRAIN_BATCH=64 RINGTRAIN_EPOCHS=1000 \
  RINGTRAIN_MIN_WORKERS=2 RINGTRAIN_CHECKPOINT_EVERY=20 RINGTRAIN_LOG_FORMAT=text RINGTRAIN_LOG_LEVEL=info
exec 3>&1 4>&2

project=""  # the scenario's compose project
projects=() # every project started, for the teardown



leftovers() {
  timeout 30 docker ps -aq --filter "label=com.docker.compose.project=$1"
  timeout 30 docker network ls -q --filter "label=com.docker.compose.project=$1"
  timeout 30 docker volume ls -q --filter "label=com.docker.compose.project=$1"
}

teardown() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  exec 1>&3 2>&4
  stop_child
  local p left
  for p in "${projects[@]}"; do
    project=$p
    compose 120 down -v --remove-orphans --timeout 10 >"$work/down.log" 2>&1 \
      || { echo "compose down of $p failed:"; cat "$work/down.log"; }
    left=$(leftovers "$p")
    if [[ -n $left ]]; then
      echo "[chaos] FAIL: left behind by project $p: $left" >&2
      rc=1
    fi
  done
  if $own_image; then
    timeout 60 docker rmi -f "$image" >/dev/null 2>&1
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

json_field() {
  awk -v key="\"$2\":" '$1 == key { v = $2; sub(/,$/, "", v); gsub(/"/, "", v); print v; exit }' "$1"
}

# logs_of CONTAINER prints the container's whole log (read at once: `docker
# logs | grep -q` would kill docker logs with SIGPIPE, a failure under pipefail).
logs_of() { timeout 20 docker logs "$1" 2>&1; }

has_log() {
  local out
  out=$(logs_of "$1") || return 1
  grep -Eq -- "$2" <<<"$out"
}

count_log() {
  local out
  out=$(logs_of "$1") || { echo 0; return; }
  grep -Ec -- "$2" <<<"$out" || true
}

# wait_log CONTAINER REGEX SECONDS [MIN_COUNT]: waits until the log has at
# least MIN_COUNT (default 1) lines matching.
wait_log() {
  local deadline=$((SECONDS + $3)) want=${4:-1}
  while ((SECONDS < deadline)); do
    if (($(count_log "$1" "$2") >= want)); then
      return 0
    fi
    sleep 0.3
  done
  return 1
}

# last_checkpoint CONTAINER prints the step count of the newest checkpoint
# the coordinator logged (0 if none): the run's progress.
last_checkpoint() {
  local out
  out=$(logs_of "$1") || { echo 0; return; }
  sed -n 's/.*msg="checkpoint written".* steps=\([0-9]*\).*/\1/p' <<<"$out" | tail -n 1 | grep . || echo 0
}

# wait_progress CONTAINER STEPS SECONDS waits until a checkpoint at or beyond
# STEPS is written.
wait_progress() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if (($(last_checkpoint "$1") >= $2)); then
      return 0
    fi
    sleep 0.3
  done
  return 1
}

dump_logs() {
  echo "---- compose logs of $project (last 80 lines) ----" >&2
  compose 60 logs --no-color 2>&1 | grep -v 'checkpoint written' | tail -n 80 >&2 || true
}

# start_run NAME STEPS starts a detached compose project of 3 workers and
# waits for a ring of 3 and 100 steps of training.
start_run() {
  project="ringtrain-chaos-$tag-$1"
  projects+=("$project")
  log "[$1] starting: coordinator + 3 workers, $2 steps"
  RINGTRAIN_STEPS=$2 compose 180 up -d --no-color --scale worker=3 >"$work/up-$1.log" 2>&1 \
    || { cat "$work/up-$1.log" >&2; fail "[$1] compose up -d"; }
  coord=$(containers coordinator)
  [[ -n $coord ]] || fail "[$1] no coordinator container"
  wait_log "$coord" 'msg="ring formed".* workers=3' 60 || { dump_logs; fail "[$1] no ring of 3 workers within 60 s"; }
  wait_progress "$coord" 100 60 || { dump_logs; fail "[$1] no checkpoint at step 100 within 60 s"; }
}

# expected_samples STEPS: the samples the schedule trains in STEPS global
# steps (every epoch but its last batch is full), from the coordinator's
# "training" line (train_rows) and the batch size.
expected_samples() {
  local rows
  rows=$(sed -n 's/.*msg=training .*train_rows=\([0-9]*\).*/\1/p' <<<"$(logs_of "$coord")" | head -n 1)
  [[ -n $rows ]] || fail "cannot read train_rows from the coordinator's log"
  awk -v s="$1" -v n="$rows" -v b="$RINGTRAIN_BATCH" 'BEGIN {
    per = int((n + b - 1) / b); full = int(s / per); rem = s % per
    printf "%d\n", full * n + rem * b }'
}

# finish_run NAME STEPS WORLD waits for the coordinator to exit 0 and checks
# summary.json, then removes the project.
finish_run() {
  local name=$1 want_steps=$2 want_world=$3 code
  code=$(bounded 150 docker wait "$coord") || { dump_logs; fail "[$name] the coordinator did not finish within 150 s"; }
  [[ $code == 0 ]] || { dump_logs; fail "[$name] the coordinator exited with $code, want 0"; }
  # What the coordinator saw of the fault, for the record.
  grep -E 'msg="(step aborted|step recovered|worker suspect[^"]*|worker left the cluster|worker is back[^"]*|ring formed|resuming from checkpoint|coordinator started)"' \
    <<<"$(logs_of "$coord")" | sed -e 's/^time=[^ ]*T\([0-9:.]*\)Z /\1 /' -e "s/^/[$name]   /" | cut -c1-230 || true
  mkdir -p "$work/out-$name"
  timeout 60 docker cp "$coord:/out/." "$work/out-$name/" || fail "[$name] docker cp of /out failed"
  local s="$work/out-$name/summary.json"
  [[ -s $s ]] || fail "[$name] no summary.json"
  local steps samples world acc want_samples
  steps=$(json_field "$s" steps)
  samples=$(json_field "$s" samples)
  world=$(json_field "$s" world_size)
  acc=$(json_field "$s" test_accuracy)
  want_samples=$(expected_samples "$want_steps")
  log "[$name] summary.json: steps=$steps samples=$samples world_size=$world test_accuracy=$acc"
  [[ $steps == "$want_steps" ]] || fail "[$name] steps is '$steps', want $want_steps"
  [[ $samples == "$want_samples" ]] || fail "[$name] samples is '$samples', want exactly $want_samples (no sample lost or counted twice)"
  [[ $world == "$want_world" ]] || fail "[$name] world_size is '$world', want $want_world"
  awk -v a="$acc" -v f="$floor" 'BEGIN { exit !(a != "" && a + 0 >= f + 0) }' \
    || fail "[$name] test accuracy '$acc' is below the floor $floor"
  compose 120 down -v --remove-orphans --timeout 10 >"$work/down-$name.log" 2>&1 \
    || { cat "$work/down-$name.log" >&2; fail "[$name] compose down"; }
  [[ -z $(leftovers "$project") ]] || fail "[$name] compose down left something behind"
}

# worker_id CONTAINER: the worker's id from its "worker started" line.
worker_id() {
  sed -n 's/.*msg="worker started" worker=\([^ ]*\).*/\1/p' <<<"$(logs_of "$1")" | head -n 1
}

first_worker() {
  local ws
  ws=$(containers worker)
  echo "${ws%%$'\n'*}"
}

# ---------------------------------------------------------------- scenarios
scenario_kill() {
  local steps=1200
  start_run kill "$steps"
  local victim vid t0 at rings2
  victim=$(first_worker)
  vid=$(worker_id "$victim")
  [[ -n $vid ]] || { dump_logs; fail "[kill] cannot read the worker id of $victim"; }
  at=$(last_checkpoint "$coord")
  rings2=$(count_log "$coord" 'msg="ring formed".* workers=2')
  t0=$SECONDS
  timeout 30 docker kill "$victim" >/dev/null || fail "[kill] docker kill $victim"
  log "[kill] SIGKILL to worker $vid (run at step $at or later)"
  wait_log "$coord" 'msg="ring formed".* workers=2' 30 $((rings2 + 1)) || { dump_logs; fail "[kill] the ring did not re-form with 2 workers within 30 s"; }
  # A kill during a step aborts it; a kill during a commit makes the worker
  # suspect (the others applied the step); gossip reports the loss later.
  has_log "$coord" "msg=\"step aborted\"|msg=\"worker suspect, left out of the ring\" worker=$vid|msg=\"worker left the cluster\" worker=$vid" \
    || { dump_logs; fail "[kill] the coordinator logged neither an aborted step nor the loss of $vid"; }
  log "[kill] ring of 2 formed $((SECONDS - t0)) s after the kill (at most; the log is polled)"
  [[ $(timeout 30 docker inspect -f '{{.State.ExitCode}}' "$victim") == 137 ]] || fail "[kill] the killed worker's exit code is not 137"
  finish_run kill "$steps" 2
}

scenario_partition() {
  local steps=4000
  start_run partition "$steps"
  local victim vid net ip ip2 t0 at rings2 rings3
  victim=$(first_worker)
  vid=$(worker_id "$victim")
  [[ -n $vid ]] || { dump_logs; fail "[partition] cannot read the worker id of $victim"; }
  # shellcheck disable=SC2016 # a Go template, not shell
net=$(timeout 30 docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$victim")
  ip=$(timeout 30 docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$victim")
  [[ -n $net && -n $ip ]] || fail "[partition] cannot read the network of $victim"
  at=$(last_checkpoint "$coord")
  rings2=$(count_log "$coord" 'msg="ring formed".* workers=2')
  t0=$SECONDS
  timeout 30 docker network disconnect "$net" "$victim" || fail "[partition] docker network disconnect"
  log "[partition] worker $vid ($ip) cut off from $net (run at step $at or later)"
  # A cut during a step costs the adaptive deadline (10x the step time, at
  # least 2 s); a cut during a commit costs the full --step-timeout (30 s by
  # default: the commit RPC is not bounded by the adaptive deadline).
  wait_log "$coord" 'msg="ring formed".* workers=2' 50 $((rings2 + 1)) || { dump_logs; fail "[partition] no ring of 2 within 50 s of the cut"; }
  has_log "$coord" 'msg="step aborted"|msg="worker suspect, left out of the ring"' \
    || { dump_logs; fail "[partition] neither an aborted step nor a suspect worker logged"; }
  log "[partition] ring of 2 formed $((SECONDS - t0)) s after the cut"
  # Training goes on without the worker while it is cut off.
  at=$(last_checkpoint "$coord")
  wait_progress "$coord" $((at + 100)) 60 || { dump_logs; fail "[partition] no progress with 2 workers"; }
  log "[partition] trained from step $at to $(last_checkpoint "$coord") with the worker cut off"
  rings3=$(count_log "$coord" 'msg="ring formed".* workers=3')
  t0=$SECONDS
  timeout 30 docker network connect --alias worker "$net" "$victim" || fail "[partition] docker network connect"
  ip2=$(timeout 30 docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$victim")
  log "[partition] worker reconnected (address $ip2, was $ip)"
  [[ $ip2 == "$ip" ]] || log "[partition] WARNING: the worker's address changed; it advertises the old one and cannot be readmitted"
  wait_log "$coord" 'msg="ring formed".* workers=3' 90 $((rings3 + 1)) \
    || { dump_logs; fail "[partition] the worker was not readmitted (no new ring of 3) within 90 s"; }
  log "[partition] ring of 3 formed again $((SECONDS - t0)) s after the reconnect$(has_log "$coord" 'worker is back in the cluster' && echo ' (coordinator: "worker is back in the cluster")')"
  finish_run partition "$steps" 3
}

scenario_restart() {
  local steps=1500
  # --min-workers 3: the restarted coordinator waits for every worker to
  # rejoin (with 2 it can finish the run before the third one notices).
  RINGTRAIN_MIN_WORKERS=3 start_run restart "$steps"
  local at resumed t0
  wait_progress "$coord" 300 60 || { dump_logs; fail "[restart] no checkpoint at step 300"; }
  timeout 30 docker kill "$coord" >/dev/null || fail "[restart] docker kill coordinator"
  at=$(last_checkpoint "$coord")
  log "[restart] SIGKILL to the coordinator; newest checkpoint logged: step $at"
  [[ $(timeout 30 docker inspect -f '{{.State.ExitCode}}' "$coord") == 137 ]] || fail "[restart] the coordinator's exit code is not 137"
  has_log "$coord" 'resuming from checkpoint' && fail "[restart] the first start already resumed (stale volume?)"
  t0=$SECONDS
  timeout 60 docker start "$coord" >/dev/null || fail "[restart] docker start coordinator"
  wait_log "$coord" 'msg="resuming from checkpoint"' 60 || { dump_logs; fail "[restart] the restarted coordinator did not resume from a checkpoint"; }
  resumed=$(sed -n 's/.*msg="resuming from checkpoint".*path=[^ ]*ckpt-0*\([0-9][0-9]*\)\.safetensors.*/\1/p' <<<"$(logs_of "$coord")" | head -n 1)
  log "[restart] resumed from the checkpoint of step ${resumed:-?} (newest logged before the kill: $at)"
  [[ -n $resumed && $resumed -ge $at ]] || fail "[restart] resumed from step '${resumed}', want the newest checkpoint ($at) or a newer one"
  wait_log "$coord" 'msg="ring formed".* workers=3' 60 2 || { dump_logs; fail "[restart] the workers did not rejoin the restarted coordinator"; }
  log "[restart] ring of 3 formed $((SECONDS - t0)) s after the restart"
  finish_run restart "$steps" 3
}

# ---------------------------------------------------------------- main
start=$SECONDS
if $own_image; then
  log "building binaries and image $image"
  RINGTRAIN_IMAGE=$image bounded 1200 bash scripts/build-images.sh >"$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; fail "scripts/build-images.sh"; }
fi
for s in $scenarios; do
  case $s in
    kill | partition | restart) ;;
    *) fail "unknown scenario $s (want kill, partition, restart)" ;;
  esac
  t=$SECONDS
  "scenario_$s"
  log "[$s] passed in $((SECONDS - t)) s"
done
log "all scenarios passed in $((SECONDS - start)) s"
