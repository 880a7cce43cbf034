#!/usr/bin/env bash
# Kubernetes end-to-end test of deploy/k8s on a real single-node cluster
# (scripts/k8s-cluster.sh: a real API server, scheduler, controllers, kubelet,
# containerd, CoreDNS). One PASS or FAIL line per scenario:
#
#   small        the small overlay (`kubectl apply -k`, 2 workers, 1 epoch):
#                Job Complete, summary.json on the claim with world_size 2,
#                every training sample, test accuracy above a floor
#   probes       workers Running but not Ready (and not restarted by their
#                TCP liveness probe) while no coordinator exists; Ready once
#                admitted; the coordinator's startup and readiness probes pass
#   worker-delete  a worker pod deleted mid-run: it leaves, the StatefulSet
#                brings it back, the coordinator readmits it, and the run
#                ends with exactly the scheduled samples and steps
#   scale        the worker StatefulSet scaled 2 -> 3 -> 2 mid-run: the ring
#                re-forms each time, no step lost
#   coordinator-delete  the coordinator pod deleted mid-run: the Job's new
#                pod resumes from the checkpoint on the claim and ends with
#                the parameters of the undisturbed small run (same
#                model.safetensors, byte for byte)
#   large        the large overlay (secure component: mTLS and the gossip key
#                from the Secret), scaled down to fit one node: trains to
#                the end; a worker pod without the certificate and one without
#                the gossip key are never admitted
#
#   scripts/e2e-k8s.sh                     # all scenarios
#   E2E_K8S_SCENARIOS="small probes" scripts/e2e-k8s.sh
#
# It brings the cluster up and always tears it down (trap on EXIT, SIGINT,
# SIGTERM), also when a scenario fails. Every wait polls with a deadline;
# every check reads real state (Job conditions, pod status, the claim's
# files, pod logs) and says what it saw when it fails.
#
# Environment:
#   E2E_K8S_SCENARIOS  scenarios to run (default: all, in the order above)
#   E2E_ACCURACY_FLOOR minimum test accuracy of the full-epoch runs (default 0.95)
#   E2E_K8S_KEEP=1     use a cluster that is up already, and leave it up at the
#                      end (then: scripts/k8s-cluster.sh down)
#   K8S_DIR            the cluster's state folder (default /tmp/ringtrain-k8s)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

export K8S_DIR=${K8S_DIR:-/tmp/ringtrain-k8s}
floor=${E2E_ACCURACY_FLOOR:-0.95}
scenarios=${E2E_K8S_SCENARIOS:-small probes worker-delete scale coordinator-delete large}
work=$(mktemp -d "${TMPDIR:-/tmp}/ringtrain-e2e-k8s.XXXXXX")
pv_root=$K8S_DIR/pv

log() { printf '[e2e-k8s %s] %s\n' "$(date +%T)" "$*"; }
fail() {
  printf '[e2e-k8s %s] FAIL: %s\n' "$(date +%T)" "$*" >&2
  exit 1
}

exec 3>&1 4>&2
child=""
teardown() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  exec 1>&3 2>&4
  [[ -n $child ]] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
  if [[ ${E2E_K8S_KEEP:-0} == 1 ]]; then
    log "E2E_K8S_KEEP=1: the cluster stays up; scripts/k8s-cluster.sh down removes it"
  else
    bash scripts/k8s-cluster.sh down || rc=1
  fi
  rm -rf "$work"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ${E2E_K8S_KEEP:-0} == 1 && -d $K8S_DIR/pids ]]; then
  log "E2E_K8S_KEEP=1: using the cluster that is up"
else
  bash scripts/k8s-cluster.sh up
fi
eval "$(bash scripts/k8s-cluster.sh env)"
command -v kubectl | grep -q "^$K8S_DIR/" || fail "kubectl is not the cluster's ($(command -v kubectl))"
log "cluster: $(kubectl version 2>/dev/null | tr '\n' ' ')"

bash deploy/gen-secrets.sh "$work/secrets" >"$work/gen-secrets.log" 2>&1 || { cat "$work/gen-secrets.log"; fail "gen-secrets.sh"; }

# --- helpers -------------------------------------------------------------

# poll SECONDS WHAT COMMAND... runs the command until it succeeds; on timeout
# fails with WHAT and the namespace's state.
poll() {
  local t=$1 what=$2
  shift 2
  local deadline=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      [[ -n ${ns:-} ]] && dump "$ns"
      fail "$what: not seen within $t s"
    fi
    sleep 1
  done
}

# dump NS prints what a failure needs to be understood.
dump() {
  {
    echo "--- state of namespace $1"
    kubectl -n "$1" get job,statefulset,pod,pvc -o wide 2>&1
    kubectl -n "$1" get events --sort-by=.lastTimestamp 2>&1 | tail -25
    echo "--- coordinator log (last 30 lines)"
    kubectl -n "$1" logs job/ringtrain-coordinator --tail 30 2>&1
  } >&2
}

# overlay NAME BASE NS [kustomization lines...] writes a test overlay on top of
# deploy/k8s/overlays/BASE in namespace NS and prints its folder.
overlay() {
  local name=$1 base=$2 ns=$3
  shift 3
  local dir=$work/overlays/$name
  mkdir -p "$dir"
  {
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n'
    printf 'namespace: %s\nresources:\n  - %s\n' "$ns" "$(realpath --relative-to="$dir" "$repo/deploy/k8s/overlays/$base")"
    printf '%s\n' "$@"
  } >"$dir/kustomization.yaml"
  echo "$dir"
}

# run_literals KEY=VALUE... are kustomization lines merging the run ConfigMap.
run_literals() {
  printf 'configMapGenerator:\n  - name: ringtrain-run\n    behavior: merge\n    literals:\n'
  local kv
  for kv in "$@"; do printf '      - %s\n' "$kv"; done
}

# pv NS SIZE makes a static hostPath PersistentVolume bound in advance to
# the claim ringtrain-outputs of NS (the cluster has no provisioner), owned by
# the pods' user; its files are under $pv_root/NS on this host.
pv() {
  local ns=$1 size=$2
  mkdir -p "$pv_root/$ns"
  chown 65532:65532 "$pv_root/$ns"
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: ringtrain-outputs-$ns
spec:
  capacity: {storage: $size}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: $ns, name: ringtrain-outputs}
  hostPath: {path: $pv_root/$ns, type: Directory}
EOF
}

job_complete() {
  [[ $(kubectl -n "$1" get job ringtrain-coordinator -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}') == True ]]
}
job_failed() {
  [[ $(kubectl -n "$1" get job ringtrain-coordinator -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}') == True ]]
}

# wait_complete NS SECONDS waits for the Job's Complete condition and fails at
# once on its Failed condition.
wait_complete() {
  local ns=$1 t=$2 deadline=$((SECONDS + $2))
  while ! job_complete "$ns"; do
    if job_failed "$ns"; then
      dump "$ns"
      fail "job/ringtrain-coordinator in $ns is Failed: $(kubectl -n "$ns" get job ringtrain-coordinator -o jsonpath='{.status.conditions[?(@.type=="Failed")].message}')"
    fi
    ((SECONDS < deadline)) || { dump "$ns"; fail "job/ringtrain-coordinator in $ns not Complete within $t s"; }
    sleep 1
  done
}

# coord_pod NS prints the name of the coordinator's running (or newest) pod.
coord_pod() {
  kubectl -n "$1" get pods -l app.kubernetes.io/component=coordinator \
    --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[-1:].metadata.name}'
}

# follow NS POD FILE streams the pod's log into FILE in the background
# (until the container ends), so that it outlives the pod's deletion.
follow() {
  poll 120 "pod $2 in $1 running" running "$1" "$2"
  kubectl -n "$1" logs -f "$2" >"$3" 2>&1 &
}
pod_log_has() { kubectl -n "$1" logs "$2" 2>/dev/null | grep -qE -- "$3"; }
running() { [[ $(kubectl -n "$1" get pod "$2" -o jsonpath='{.status.phase}') == Running ]]; }

# summary_field FILE KEY prints a top-level number or string of summary.json.
summary_field() {
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"
}

# check_summary NS WORLD STEPS SAMPLES [FLOOR] checks the claim's summary.json;
# an empty expectation is not checked.
check_summary() {
  local ns=$1 world=$2 steps=$3 samples=$4 acc_floor=${5:-}
  local f=$pv_root/$ns/summary.json
  [[ -s $f ]] || fail "no summary.json on the claim of $ns (files: $(ls "$pv_root/$ns" 2>&1 | tr '\n' ' '))"
  local got_world got_steps got_samples got_acc
  got_world=$(summary_field "$f" world_size)
  got_steps=$(summary_field "$f" steps)
  got_samples=$(summary_field "$f" samples)
  got_acc=$(summary_field "$f" test_accuracy)
  [[ -z $world || $got_world == "$world" ]] || fail "$ns: summary.json world_size $got_world, want $world"
  [[ -z $steps || $got_steps == "$steps" ]] || fail "$ns: summary.json steps $got_steps, want $steps"
  [[ -z $samples || $got_samples == "$samples" ]] || fail "$ns: summary.json samples $got_samples, want $samples"
  if [[ -n $acc_floor ]]; then
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$got_acc" "$acc_floor" \
      || fail "$ns: test_accuracy $got_acc below $acc_floor"
  fi
  log "$ns: summary.json world_size=$got_world steps=$got_steps samples=$got_samples test_accuracy=$got_acc"
}

# log_count FILE PATTERN counts the lines of FILE matching the ERE.
log_count() { grep -cE -- "$2" "$1" 2>/dev/null || true; }
log_has() { grep -qE -- "$2" "$1" 2>/dev/null; }

# delete_ns NS removes a scenario's namespace and its PersistentVolume.
delete_ns() {
  kubectl delete namespace "$1" --wait=true --timeout=120s >/dev/null 2>&1 || log "namespace $1 not deleted within 120 s"
  kubectl delete pv "ringtrain-outputs-$1" --wait=false >/dev/null 2>&1 || true
}

# The undisturbed small run, the reference of the others.
ref_steps="" ref_samples="" ref_model=""

# --- scenarios -----------------------------------------------------------

scenario_small() {
  ns=rt-small
  local dir
  dir=$(overlay small small "$ns")
  pv "$ns" 256Mi
  local t0=$SECONDS
  kubectl apply -k "$dir" >"$work/small-apply.log" 2>&1 || { cat "$work/small-apply.log"; fail "kubectl apply -k (small)"; }
  wait_complete "$ns" 900
  log "small: Job Complete $((SECONDS - t0)) s after kubectl apply -k"
  local pod
  pod=$(coord_pod "$ns")
  kubectl -n "$ns" logs "$pod" >"$work/small-coordinator.log" 2>&1
  local rows
  rows=$(grep -oE '"train_rows":[0-9]+' "$work/small-coordinator.log" | head -1 | cut -d: -f2)
  [[ -n $rows ]] || fail "small: no train_rows in the coordinator's log"
  check_summary "$ns" 2 "" "$rows" "$floor"
  local f
  for f in metrics.csv model.safetensors learning_curve.png; do
    [[ -s $pv_root/$ns/$f ]] || fail "small: $f missing on the claim"
  done
  # The reference of the later scenarios (this runs in a subshell).
  summary_field "$pv_root/$ns/summary.json" steps >"$work/ref-steps"
  echo "$rows" >"$work/ref-samples"
  cp "$pv_root/$ns/model.safetensors" "$work/small-model.safetensors"
  # The root file system was read-only: the pod's spec as the API server
  # stored it, and the coordinator wrote only to /out and /tmp.
  [[ $(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.spec.containers[0].securityContext.readOnlyRootFilesystem}') == true ]] \
    || fail "small: coordinator pod without readOnlyRootFilesystem"
  # DNS: the workers joined through the headless Service's name.
  local joined
  joined=$(log_count "$work/small-coordinator.log" '"msg":"worker joined"')
  ((joined >= 2)) || fail "small: $joined workers joined, want 2"
  delete_ns "$ns"
}

scenario_probes() {
  ns=rt-probes
  local dir
  # Two epochs: long enough for the readiness probes (every 5 s) to see the
  # coordinator and the admitted workers Ready before the run ends (a 60-step
  # run ended before the first passing readiness probe on a loaded machine).
  dir=$(overlay probes small "$ns" "$(run_literals RINGTRAIN_EPOCHS=2)")
  pv "$ns" 256Mi
  # Everything but the coordinator's Job: the workers wait for a coordinator.
  kubectl kustomize "$dir" >"$work/probes.yaml"
  python3 - "$work/probes.yaml" "$work/probes-nojob.yaml" <<'EOF'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
open(sys.argv[2], "w").write("\n---\n".join(d for d in docs if "\nkind: Job\n" not in "\n" + d + "\n"))
EOF
  kubectl apply -f "$work/probes-nojob.yaml" >/dev/null
  poll 180 "both worker pods Running" workers_running "$ns" 2
  # For 25 s (more than 2 liveness periods and 5 readiness periods): Running,
  # not Ready (readiness: NOT_SERVING while not admitted), never restarted
  # (liveness: a TCP connect, which succeeds while waiting).
  local deadline=$((SECONDS + 25)) seen
  while ((SECONDS < deadline)); do
    seen=$(kubectl -n "$ns" get pods -l app.kubernetes.io/component=worker \
      -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}{"\n"}{end}')
    while read -r name phase ready restarts; do
      [[ $phase == Running && $ready == false && $restarts == 0 ]] \
        || fail "probes: worker $name without coordinator: phase=$phase ready=$ready restarts=$restarts, want Running, not Ready, 0 restarts"
    done <<<"$seen"
    sleep 2
  done
  log "probes: workers Running, not Ready, not restarted for 25 s without a coordinator"
  kubectl apply -k "$dir" >/dev/null
  poll 180 "the coordinator's startup and readiness probes passing" coord_ready "$ns"
  poll 180 "both workers Ready once admitted" workers_ready "$ns" 2
  log "probes: coordinator started and Ready; workers Ready after admission"
  wait_complete "$ns" 600
  local restarts
  restarts=$(kubectl -n "$ns" get pods -o jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}{"\n"}{end}' | sort -u | tr '\n' ' ')
  [[ $restarts == "0 " ]] || fail "probes: restart counts $restarts, want 0 for every pod"
  delete_ns "$ns"
}
workers_running() {
  local n
  n=$(kubectl -n "$1" get pods -l app.kubernetes.io/component=worker --field-selector=status.phase=Running -o name | wc -l)
  ((n == $2))
}
workers_ready() {
  local n
  n=$(kubectl -n "$1" get pods -l app.kubernetes.io/component=worker \
    -o jsonpath='{range .items[*]}{.status.containerStatuses[0].ready}{"\n"}{end}' | grep -c '^true$')
  ((n == $2))
}
coord_ready() {
  local pod
  pod=$(coord_pod "$1")
  [[ -n $pod ]] || return 1
  [[ $(kubectl -n "$1" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].started} {.status.containerStatuses[0].ready}') == "true true" ]]
}

# A longer run for the disturbances: 3 epochs, a checkpoint every 20 steps.
disturbed_literals() { run_literals RINGTRAIN_EPOCHS=3 RINGTRAIN_CHECKPOINT_EVERY=20; }

scenario_worker_delete() {
  [[ -n $ref_steps ]] || fail "worker-delete needs the small scenario's steps per epoch (run small first)"
  ns=rt-worker-delete
  local dir
  dir=$(overlay worker-delete small "$ns" "$(disturbed_literals)")
  pv "$ns" 256Mi
  kubectl apply -k "$dir" >/dev/null
  local pod clog=$work/worker-delete-coordinator.log
  poll 180 "the coordinator pod" coord_pod_exists "$ns"
  pod=$(coord_pod "$ns")
  follow "$ns" "$pod" "$clog"
  poll 300 "a first checkpoint" log_has "$clog" '"msg":"checkpoint written"'
  local uid
  uid=$(kubectl -n "$ns" get pod ringtrain-worker-1 -o jsonpath='{.metadata.uid}')
  kubectl -n "$ns" delete pod ringtrain-worker-1 --wait=false >/dev/null
  log "worker-delete: deleted pod ringtrain-worker-1 mid-run"
  poll 120 "the coordinator seeing ringtrain-worker-1 leave" log_has "$clog" '"msg":"worker left the cluster","worker":"ringtrain-worker-1'
  poll 180 "a new ringtrain-worker-1 pod Running" new_pod_running "$ns" ringtrain-worker-1 "$uid"
  poll 180 "the new ringtrain-worker-1 readmitted" joined_twice "$clog" ringtrain-worker-1
  poll 180 "a ring of 2 after the readmission" ring_after_last_join "$clog" ringtrain-worker-1 2
  log "worker-delete: the pod came back and was readmitted into a ring of 2"
  wait_complete "$ns" 900
  wait "$!" 2>/dev/null || true
  check_summary "$ns" "" $((3 * ref_steps)) $((3 * ref_samples)) "$floor"
  delete_ns "$ns"
}
coord_pod_exists() { [[ -n $(coord_pod "$1") ]]; }
new_pod_running() {
  [[ $(kubectl -n "$1" get pod "$2" -o jsonpath='{.metadata.uid} {.status.phase}') == *" Running" ]] &&
    [[ $(kubectl -n "$1" get pod "$2" -o jsonpath='{.metadata.uid}') != "$3" ]]
}
joined_twice() {
  local n
  n=$(log_count "$1" "\"msg\":\"worker joined\",\"worker\":\"$2")
  ((n >= 2))
}
# ring_after_last_join FILE WORKER N: a "ring formed" line with N workers
# after WORKER's last join.
ring_after_last_join() {
  awk -v w="\"worker\":\"$2" -v n="\"workers\":$3," '
    index($0, "\"msg\":\"worker joined\"") && index($0, w) { seen = 0; joined = 1 }
    joined && index($0, "\"msg\":\"ring formed\"") && index($0, n) { seen = 1 }
    END { exit !seen }' "$1"
}

scenario_scale() {
  [[ -n $ref_steps ]] || fail "scale needs the small scenario's steps per epoch (run small first)"
  ns=rt-scale
  local dir
  dir=$(overlay scale small "$ns" "$(disturbed_literals)")
  pv "$ns" 256Mi
  kubectl apply -k "$dir" >/dev/null
  local pod clog=$work/scale-coordinator.log
  poll 180 "the coordinator pod" coord_pod_exists "$ns"
  pod=$(coord_pod "$ns")
  follow "$ns" "$pod" "$clog"
  poll 300 "a first checkpoint" log_has "$clog" '"msg":"checkpoint written"'
  kubectl -n "$ns" scale statefulset ringtrain-worker --replicas=3 >/dev/null
  log "scale: 2 -> 3 workers"
  poll 240 "a ring of 3 workers" log_has "$clog" '"msg":"ring formed".*"workers":3,'
  local formed
  formed=$(log_count "$clog" '"msg":"ring formed"')
  kubectl -n "$ns" scale statefulset ringtrain-worker --replicas=2 >/dev/null
  log "scale: 3 -> 2 workers"
  poll 240 "ringtrain-worker-2 leaving" log_has "$clog" '"msg":"worker left the cluster","worker":"ringtrain-worker-2'
  poll 240 "a ring of 2 re-formed after the scale-down" ring_formed_after "$clog" "$formed" 2
  log "scale: the ring re-formed with 3, then with 2 workers"
  wait_complete "$ns" 900
  check_summary "$ns" "" $((3 * ref_steps)) $((3 * ref_samples)) "$floor"
  delete_ns "$ns"
}
# ring_formed_after FILE K N: a "ring formed" line with N workers after the
# first K such lines.
ring_formed_after() {
  grep -E '"msg":"ring formed"' "$1" | tail -n +$(($2 + 1)) | grep -qE "\"workers\":$3,"
}

scenario_coordinator_delete() {
  [[ -n $ref_model ]] || fail "coordinator-delete compares with the small scenario's model (run small first)"
  ns=rt-coordinator-delete
  local dir
  # The small run's configuration, with a checkpoint every 20 steps.
  dir=$(overlay coordinator-delete small "$ns" "$(run_literals RINGTRAIN_CHECKPOINT_EVERY=20)")
  pv "$ns" 256Mi
  kubectl apply -k "$dir" >/dev/null
  local pod1 clog1=$work/coord-delete-1.log clog2=$work/coord-delete-2.log
  poll 180 "the coordinator pod" coord_pod_exists "$ns"
  pod1=$(coord_pod "$ns")
  follow "$ns" "$pod1" "$clog1"
  poll 300 "a checkpoint after 40 steps" log_has "$clog1" '"msg":"checkpoint written".*"steps":([4-9][0-9]|1[0-9][0-9])[,}]'
  kubectl -n "$ns" delete pod "$pod1" --wait=false >/dev/null
  log "coordinator-delete: deleted the coordinator pod $pod1 mid-run"
  poll 240 "a new coordinator pod" new_coord_pod "$ns" "$pod1"
  local pod2
  pod2=$(coord_pod "$ns")
  follow "$ns" "$pod2" "$clog2"
  wait_complete "$ns" 900
  sleep 1 # the log stream ends with the container; it is a file by now
  kubectl -n "$ns" logs "$pod2" >"$clog2" 2>&1
  log_has "$clog2" '"msg":"resuming from checkpoint"' \
    || { tail -20 "$clog2" >&2; fail "coordinator-delete: the new pod $pod2 did not resume from a checkpoint"; }
  log "coordinator-delete: $pod2 $(grep -oE '"msg":"resuming from checkpoint".*' "$clog2" | head -c 200)"
  check_summary "$ns" 2 "$ref_steps" "$ref_samples"
  cmp -s "$ref_model" "$pv_root/$ns/model.safetensors" \
    || fail "coordinator-delete: model.safetensors differs from the undisturbed small run's ($(sha256sum "$ref_model" "$pv_root/$ns/model.safetensors" | cut -c1-16 | tr '\n' ' '))"
  log "coordinator-delete: model.safetensors identical to the undisturbed run's"
  # docs/deploy.md, "Exit codes and retries": a deleted pod exits 143 and is
  # counted against backoffLimit.
  local failed
  failed=$(kubectl -n "$ns" get job ringtrain-coordinator -o jsonpath='{.status.failed}')
  [[ $failed == 1 ]] || fail "coordinator-delete: the Job counts $failed failed pods, want 1 (the deleted one)"
  delete_ns "$ns"
}
new_coord_pod() {
  local p
  p=$(coord_pod "$1")
  [[ -n $p && $p != "$2" ]] && running "$1" "$p"
}

scenario_large() {
  ns=rt-large
  local dir
  # The large overlay as it is, but sized for one 2-core node: 3 workers
  # (all required, no spare), one short epoch, small requests.
  dir=$(overlay large large "$ns" \
    "$(run_literals RINGTRAIN_MIN_WORKERS=3 RINGTRAIN_MAX_WORKERS=3 RINGTRAIN_EPOCHS=1 RINGTRAIN_STEPS=40)" \
    "replicas: [{name: ringtrain-worker, count: 3}]" \
    "patches:
  - target: {kind: StatefulSet, name: ringtrain-worker}
    patch: '[{\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/resources\", \"value\": {\"requests\": {\"cpu\": \"100m\", \"memory\": \"128Mi\"}, \"limits\": {\"cpu\": \"1\", \"memory\": \"512Mi\"}}}]'
  - target: {kind: Job, name: ringtrain-coordinator}
    patch: '[{\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/resources\", \"value\": {\"requests\": {\"cpu\": \"100m\", \"memory\": \"128Mi\"}, \"limits\": {\"cpu\": \"1\", \"memory\": \"768Mi\"}}}]'")
  pv "$ns" 2Gi
  kubectl create namespace "$ns" >/dev/null
  local s=$work/secrets
  kubectl -n "$ns" create secret generic ringtrain-secrets --from-file="$s/ca.pem" --from-file="$s/coordinator.pem" \
    --from-file="$s/coordinator-key.pem" --from-file="$s/worker.pem" --from-file="$s/worker-key.pem" \
    --from-file="$s/gossip.key" >/dev/null
  kubectl apply -k "$dir" >"$work/large-apply.log" 2>&1 || { cat "$work/large-apply.log"; fail "kubectl apply -k (large)"; }
  local pod clog=$work/large-coordinator.log
  poll 180 "the coordinator pod" coord_pod_exists "$ns"
  pod=$(coord_pod "$ns")
  follow "$ns" "$pod" "$clog"
  poll 180 "the coordinator started" log_has "$clog" '"msg":"coordinator started"'
  # The gossip key but no certificate: gossip lets it in, the coordinator's
  # TLS gRPC server does not. A certificate but no gossip key: the encrypted
  # gossip cluster does not let it in.
  intruder "$ns" intruder-nocert '[{key: gossip.key, path: gossip.key}]' \
    --gossip-key-file=/etc/ringtrain/secrets/gossip.key
  intruder "$ns" intruder-nokey '[{key: ca.pem, path: ca.pem}, {key: worker.pem, path: worker.pem}, {key: worker-key.pem, path: worker-key.pem}]' \
    --tls-cert=/etc/ringtrain/secrets/worker.pem --tls-key=/etc/ringtrain/secrets/worker-key.pem --tls-ca=/etc/ringtrain/secrets/ca.pem
  poll 120 "intruder-nocert refused by the coordinator's TLS server" pod_log_has "$ns" intruder-nocert 'msg="?waiting for the coordinator"?.*join coordinator'
  poll 120 "intruder-nokey refused by the encrypted gossip" pod_log_has "$ns" intruder-nokey 'encryption is not configured'
  wait_complete "$ns" 900
  kubectl -n "$ns" logs "$pod" >"$clog" 2>&1
  check_summary "$ns" 3 40 ""
  local joined
  joined=$(grep -E '"msg":"worker joined"' "$clog" | grep -oE '"worker":"[^"]*"' | sort -u)
  [[ $(wc -l <<<"$joined") == 3 ]] || fail "large: the coordinator admitted: $joined; want the 3 StatefulSet workers"
  grep -q intruder <<<"$joined" && fail "large: an intruder was admitted: $joined"
  local p
  for p in intruder-nocert intruder-nokey; do
    kubectl -n "$ns" logs "$p" >"$work/$p.log" 2>&1
    [[ $(kubectl -n "$ns" get pod "$p" -o jsonpath='{.status.phase} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready}') == "Running 0 false" ]] \
      || fail "large: $p is not a running, never Ready worker: $(kubectl -n "$ns" get pod "$p" -o wide 2>&1 | tail -1)"
    log "large: $p ran through the run and was never admitted: $(grep -E 'waiting for the coordinator|encryption is not configured' "$work/$p.log" | tail -n 1 | head -c 240)"
  done
  delete_ns "$ns"
}

# intruder NS NAME ITEMS FLAGS... starts a worker pod that is not part of the
# StatefulSet, with only the Secret's ITEMS mounted.
intruder() {
  local ns=$1 name=$2 items=$3
  shift 3
  local args="" a
  for a in "$@"; do args+=", \"$a\""; done
  kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
  labels: {app.kubernetes.io/name: ringtrain-intruder}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: worker
      image: ringtrain:dev
      imagePullPolicy: IfNotPresent
      command: [/usr/local/bin/worker, --join=ringtrain-gossip:7946, --grpc-addr=:7071, --gossip-addr=:7946,
                --ring-socket-dir=, --id=$name $args]
      readinessProbe: {exec: {command: [/usr/local/bin/worker, healthcheck, --addr=127.0.0.1:7071, --timeout=2s]}, periodSeconds: 5}
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      volumeMounts: [{name: secrets, mountPath: /etc/ringtrain/secrets, readOnly: true}]
  volumes:
    - name: secrets
      secret: {secretName: ringtrain-secrets, defaultMode: 0440, items: $items}
EOF
  poll 120 "intruder $name running" running "$ns" "$name"
}

# --- run -----------------------------------------------------------------

results=()
failed=0
for s in $scenarios; do
  fn=scenario_${s//-/_}
  declare -F "$fn" >/dev/null || fail "unknown scenario $s (known: small probes worker-delete scale coordinator-delete large)"
  log "=== scenario $s"
  # What a failed earlier attempt (E2E_K8S_KEEP=1) may have left.
  if kubectl get namespace "rt-$s" >/dev/null 2>&1 || kubectl get pv "ringtrain-outputs-rt-$s" >/dev/null 2>&1; then
    delete_ns "rt-$s"
  fi
  rm -rf "${pv_root:?}/rt-$s"
  t0=$SECONDS
  rc=0
  (
    set -E
    trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
    trap 'rc=$?; printf "[e2e-k8s %s] FAIL: line %s: %s (exit %s)\n" "$(date +%T)" "$LINENO" "$BASH_COMMAND" "$rc" >&2' ERR
    "$fn"
  ) &
  child=$!
  wait "$child" || rc=$?
  child=""
  if ((rc == 0)); then
    results+=("PASS $s ($((SECONDS - t0)) s)")
  else
    results+=("FAIL $s ($((SECONDS - t0)) s)")
    failed=1
    # Its pods would hold the node's CPU requests and starve the next
    # scenario (the state was printed with the failure).
    delete_ns "rt-$s"
  fi
  # The reference of the later scenarios comes from the small run's subshell.
  if [[ $s == small && $rc == 0 ]]; then
    ref_model=$work/small-model.safetensors
    ref_steps=$(cat "$work/ref-steps" 2>/dev/null)
    ref_samples=$(cat "$work/ref-samples" 2>/dev/null)
  fi
done
log "results:"
printf '[e2e-k8s] %s\n' "${results[@]}"
((failed == 0)) || fail "at least one Kubernetes scenario failed"
log "all Kubernetes scenarios passed"
