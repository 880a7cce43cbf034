#!/usr/bin/env bash
# A single-node Kubernetes cluster on this machine, for scripts/e2e-k8s.sh.
#
#   scripts/k8s-cluster.sh check   # can it run here? prints why not, exit 1
#   scripts/k8s-cluster.sh up      # build (Go build cache), start, wait Ready
#   scripts/k8s-cluster.sh env     # prints export KUBECONFIG=... PATH=...
#   scripts/k8s-cluster.sh down    # stop everything, remove every trace
#
# What runs (all as root, every process recorded by PID in $K8S_DIR/pids):
#   etcd (Debian's etcd-server) on 127.0.0.1; kube-apiserver,
#   kube-controller-manager, kube-scheduler and kubelet v1.34.3 built from the
#   module k8s.io/kubernetes (deploy/k8s/cluster/kube/go.mod pins it; the
#   Go build cache keeps them, a warm build is a link); a containerd of its
#   own (not Docker's) with the CRI plugin and the bridge CNI of Debian's
#   containernetworking-plugins; CoreDNS (deploy/k8s/cluster/addons) as a
#   host process serving cluster.local on the node IP. There is no
#   kube-proxy: ClusterIP Services do not route (the tests use the headless
#   Service's DNS names and pod IPs only).
#
# Addresses: loopback, and the bridge $K8S_BRIDGE ($K8S_NODE_IP/24, pods in
# the same /24), which is the node IP. Two ACCEPT rules (comment
# ringtrain-k8s) let bridged pod traffic past Docker's FORWARD DROP.
#
# State: everything under $K8S_DIR (default /tmp/ringtrain-k8s). What cannot
# live there and `down` removes: the bridge, our iptables rules and the
# KUBE-* chains the kubelet made (iptables and ip6tables), pod netns under /run/netns, the kubelet's
# /var/log/containers links, /var/lib/cni entries of our network, the
# cgroups under /ringtrain-k8s. `down` is idempotent and runs on any failure
# of `up`.
#
# Environment:
#   K8S_DIR      state folder (default /tmp/ringtrain-k8s)
#   K8S_BRIDGE   bridge name (default rtk8s0)
#   K8S_NODE_IP  node IP on the bridge (default 10.213.0.1; pods 10.213.0.0/24)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

K8S_DIR=${K8S_DIR:-/tmp/ringtrain-k8s}
K8S_BRIDGE=${K8S_BRIDGE:-rtk8s0}
K8S_NODE_IP=${K8S_NODE_IP:-10.213.0.1}
K8S_VERSION=v1.34.3
subnet_prefix=${K8S_NODE_IP%.*}
pod_cidr="$subnet_prefix.0/24"
service_cidr=10.214.0.0/24
node_name=ringtrain-k8s-node
cgroup_root=/ringtrain-k8s
cni_net=ringtrain-k8s
etcd_port=23790
pause_image=docker.io/ringtrain-k8s/pause:1

bin=$K8S_DIR/bin
pki=$K8S_DIR/pki
pids=$K8S_DIR/pids
logs=$K8S_DIR/logs
kubeconfig=$K8S_DIR/admin.kubeconfig

log() { printf '[k8s-cluster %s] %s\n' "$(date +%T)" "$*"; }
die() { printf '[k8s-cluster %s] FAIL: %s\n' "$(date +%T)" "$*" >&2; exit 1; }

# check prints why the cluster cannot run here and returns 1, or returns 0.
check() {
  local why=()
  [[ $(id -u) -eq 0 ]] || why+=("not root (the kubelet and containerd need root)")
  [[ $(uname -s) == Linux ]] || why+=("not Linux")
  command -v containerd >/dev/null || why+=("containerd is not installed")
  command -v runc >/dev/null || why+=("runc is not installed")
  command -v ctr >/dev/null || why+=("ctr is not installed")
  command -v docker >/dev/null && docker info >/dev/null 2>&1 || why+=("no Docker engine answers (it builds the images)")
  command -v go >/dev/null || why+=("go is not installed")
  command -v openssl >/dev/null || why+=("openssl is not installed")
  command -v python3 >/dev/null || why+=("python3 is not installed (the e2e checks read JSON with it)")
  [[ -x /usr/bin/etcd && -x /usr/lib/cni/bridge ]] || command -v apt-get >/dev/null \
    || why+=("etcd-server or containernetworking-plugins missing and no apt-get to install them")
  command -v iptables >/dev/null || why+=("iptables is not installed")
  command -v ip >/dev/null || why+=("ip (iproute2) is not installed")
  local parent free_kb
  parent=$(dirname "$K8S_DIR")
  free_kb=$(df -Pk "$parent" | awk 'NR==2{print $4}')
  ((free_kb >= 5 * 1024 * 1024)) || why+=("less than 5 GB free under $parent ($((free_kb / 1024)) MB)")
  free_kb=$(df -Pk "$(go env GOCACHE 2>/dev/null || echo /)" | awk 'NR==2{print $4}')
  ((free_kb >= 5 * 1024 * 1024)) || why+=("less than 5 GB free for the Go build cache")
  ip link show "$K8S_BRIDGE" >/dev/null 2>&1 && [[ ! -d $K8S_DIR ]] && why+=("a link $K8S_BRIDGE exists that is not ours")
  if ((${#why[@]})); then
    printf '%s\n' "${why[@]}"
    return 1
  fi
}

# packages installs Debian's etcd-server and containernetworking-plugins when
# missing (root and apt-get only).
packages() {
  local need=()
  [[ -x /usr/bin/etcd ]] || need+=(etcd-server)
  [[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
  ((${#need[@]})) || return 0
  command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get to install them"
  log "installing Debian packages: ${need[*]}"
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}") \
    >"$K8S_DIR/apt.log" 2>&1 || { tail -20 "$K8S_DIR/apt.log"; die "apt-get install ${need[*]} failed"; }
  # The package may start etcd under systemd; this cluster runs its own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
    systemctl stop etcd || true
  fi
}

# build builds the binaries into $bin: with a warm Go build cache this is
# only the link.
build() {
  mkdir -p "$bin"
  local t0=$SECONDS
  local vpkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version
  local ld="-s -w"
  for p in $vpkg $cpkg; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=34 -X $p.gitTreeState=clean"
  done
  log "building Kubernetes $K8S_VERSION (cold: many minutes and over 4 GB of Go build cache; warm: a link)"
  (cd deploy/k8s/cluster/kube && CGO_ENABLED=0 timeout 1800 go build -trimpath -ldflags "$ld" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl) \
    >"$logs/build-kube.log" 2>&1 || { tail -30 "$logs/build-kube.log"; die "go build of Kubernetes failed"; }
  (cd deploy/k8s/cluster/addons && CGO_ENABLED=0 timeout 900 go build -trimpath -ldflags "-s -w" -o "$bin/" ./coredns ./pause) \
    >"$logs/build-addons.log" 2>&1 || { tail -30 "$logs/build-addons.log"; die "go build of CoreDNS and pause failed"; }
  log "binaries built in $((SECONDS - t0)) s: $(du -sh "$bin" | cut -f1)"
}

# start NAME ARGS... starts a process in the background, its output in
# $logs/NAME.log, its PID in $pids/NAME.
start() {
  local name=$1
  shift
  setsid "$@" >"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pids/$name"
}

# wait_for SECONDS WHAT COMMAND... polls the command until it succeeds.
wait_for() {
  local t=$1 what=$2
  shift 2
  local deadline=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "not $what after $t s; the last lines of the logs:"
      tail -n 5 "$logs"/*.log >&2 || true
      die "$what: timed out"
    fi
    sleep 0.5
  done
}

# alive NAME fails when the process NAME has exited.
alive() { kill -0 "$(cat "$pids/$1")" 2>/dev/null || { tail -20 "$logs/$1.log" >&2; die "$1 exited"; }; }

pki() {
  mkdir -p "$pki"
  cd "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=ringtrain-k8s-ca" 2>/dev/null
  cert() { # NAME SUBJECT [SAN]
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    local ext=""
    [[ -n ${3:-} ]] && { printf 'subjectAltName=%s\n' "$3" >"$1.ext"; ext="-extfile $1.ext"; }
    # shellcheck disable=SC2086
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 2 $ext 2>/dev/null
  }
  cert apiserver "/CN=kube-apiserver" \
    "IP:$K8S_NODE_IP,IP:127.0.0.1,IP:${service_cidr%.*}.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert kubelet "/CN=$node_name" "IP:$K8S_NODE_IP,DNS:$node_name"
  # One client identity in system:masters for the components and the tests:
  # a throw-away test cluster, not a model of production RBAC.
  cert admin "/O=system:masters/CN=ringtrain-k8s-admin"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  cd "$repo"
  cat >"$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ringtrain-k8s
  cluster: {certificate-authority: $pki/ca.crt, server: "https://$K8S_NODE_IP:6443"}
users:
- name: admin
  user: {client-certificate: $pki/admin.crt, client-key: $pki/admin.key}
contexts:
- name: ringtrain-k8s
  context: {cluster: ringtrain-k8s, user: admin}
current-context: ringtrain-k8s
EOF
}

configs() {
  mkdir -p "$K8S_DIR/containerd" "$K8S_DIR/cni/net.d" "$K8S_DIR/kubelet" "$K8S_DIR/pods-logs" "$K8S_DIR/cni/data"
  cat >"$K8S_DIR/containerd/config.toml" <<EOF
version = 2
root = "$K8S_DIR/containerd/root"
state = "$K8S_DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$K8S_DIR/containerd/containerd.sock"
[ttrpc]
  address = "$K8S_DIR/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$K8S_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # This machine's sandbox lacks CAP_SYS_RESOURCE: without this every pod
  # sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$K8S_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$K8S_DIR/cni/net.d"
EOF
  cat >"$K8S_DIR/cni/net.d/10-$cni_net.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$cni_net",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$K8S_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$K8S_DIR/cni/data",
        "ranges": [[{"subnet": "$pod_cidr", "rangeStart": "$subnet_prefix.10", "gateway": "$K8S_NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "loopback"}
  ]
}
EOF
  cat >"$K8S_DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $K8S_NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: AlwaysAllow}
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
cgroupDriver: cgroupfs
cgroupRoot: $cgroup_root
containerRuntimeEndpoint: unix://$K8S_DIR/containerd/containerd.sock
clusterDomain: cluster.local
clusterDNS: [$K8S_NODE_IP]
resolvConf: $K8S_DIR/kubelet/resolv.conf
podLogsDir: $K8S_DIR/pods-logs
failSwapOn: false
# A test node on a shared machine: never evict or collect images for disk.
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 30
EOF
  # The pods resolve only cluster names (CoreDNS has no forward).
  printf 'nameserver %s\n' "$K8S_NODE_IP" >"$K8S_DIR/kubelet/resolv.conf"
  cat >"$K8S_DIR/Corefile" <<EOF
.:53 {
  bind $K8S_NODE_IP
  errors
  health 127.0.0.1:18080
  ready 127.0.0.1:18181
  kubernetes cluster.local {
    kubeconfig $kubeconfig ringtrain-k8s
    pods insecure
    ttl 5
  }
  cache 5
  loadbalance
}
EOF
}

# images builds the pause image and the project image and imports both into
# the cluster's containerd.
images() {
  local ctx
  ctx=$(mktemp -d "$K8S_DIR/pause-image.XXXXXX")
  install -m 0755 "$bin/pause" "$ctx/pause"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 timeout 300 docker build -q -t "${pause_image#docker.io/}" "$ctx" >"$logs/pause-image.log" 2>&1 \
    || { cat "$logs/pause-image.log"; die "docker build of the pause image failed"; }
  rm -rf "$ctx"
  # The project image under a tag of its own (Docker's ringtrain:dev, if
  # any, is left alone), named ringtrain:dev in the cluster as the manifests
  # expect.
  local tmp_image=ringtrain:k8s-e2e-$$
  log "building the project image (scripts/build-images.sh, deploy/Dockerfile)"
  BIN_DIR="$K8S_DIR/ringtrain-bin" RINGTRAIN_IMAGE=$tmp_image bash scripts/build-images.sh >"$logs/ringtrain-image.log" 2>&1 \
    || { tail -20 "$logs/ringtrain-image.log"; die "the project image did not build"; }
  local img rc=0
  for img in "${pause_image#docker.io/}" "$tmp_image"; do
    timeout 300 docker save "$img" | timeout 300 ctr -a "$K8S_DIR/containerd/containerd.sock" -n k8s.io images import - \
      >>"$logs/import.log" 2>&1 || { cat "$logs/import.log"; rc=1; }
  done
  # Both images now live in the cluster's containerd only.
  timeout 60 docker rmi "${pause_image#docker.io/}" "$tmp_image" >/dev/null 2>&1 || true
  ((rc == 0)) || die "import of the images into the cluster's containerd failed"
  ctr -a "$K8S_DIR/containerd/containerd.sock" -n k8s.io images tag --force "docker.io/library/$tmp_image" docker.io/library/ringtrain:dev >/dev/null \
    && ctr -a "$K8S_DIR/containerd/containerd.sock" -n k8s.io images rm "docker.io/library/$tmp_image" >/dev/null \
    || die "could not name the imported image ringtrain:dev"
}

# up_failed shows the components' last log lines, then tears down.
up_failed() {
  log "up failed; the last lines of each component's log:"
  local f
  for f in "$logs"/*.log; do
    [[ -f $f ]] || continue
    printf -- '--- %s\n' "$f" >&2
    tail -n 8 "$f" >&2
  done
  down
}

kc() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

up() {
  [[ ! -e $pids ]] || die "a cluster seems to run already ($pids exists); run '$0 down' first"
  local why
  why=$(check) || die "cannot run here: $why"
  mkdir -p "$K8S_DIR" "$pids" "$logs"
  # Whatever goes wrong from here on, leave nothing behind.
  trap 'rc=$?; trap - EXIT INT TERM; if ((rc != 0)); then up_failed; fi; exit $rc' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local t0=$SECONDS
  packages
  build
  pki
  configs

  # Remember what existed before, so that down removes only what we made.
  iptables-save >"$K8S_DIR/iptables.before" 2>/dev/null || true
  ip6tables-save >"$K8S_DIR/ip6tables.before" 2>/dev/null || true
  ls /run/netns 2>/dev/null | sort >"$K8S_DIR/netns.before" || true

  ip link add "$K8S_BRIDGE" type bridge
  ip addr add "$K8S_NODE_IP/24" dev "$K8S_BRIDGE"
  ip link set "$K8S_BRIDGE" up
  iptables -I FORWARD 1 -i "$K8S_BRIDGE" -m comment --comment ringtrain-k8s -j ACCEPT
  iptables -I FORWARD 1 -o "$K8S_BRIDGE" -m comment --comment ringtrain-k8s -j ACCEPT
  local c
  for c in /sys/fs/cgroup/*/; do
    [[ -d $c && ! -L ${c%/} ]] && mkdir -p "$c${cgroup_root#/}" 2>/dev/null || true
  done

  start etcd /usr/bin/etcd --name ringtrain-k8s --data-dir "$K8S_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster ringtrain-k8s=http://127.0.0.1:23800
  start containerd containerd --config "$K8S_DIR/containerd/config.toml"
  start kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$K8S_NODE_IP" --advertise-address "$K8S_NODE_IP" --secure-port 6443 \
    --service-cluster-ip-range "$service_cidr" --authorization-mode Node,RBAC \
    --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --allow-privileged=false --anonymous-auth=false --profiling=false
  local kubeconf_args=(--kubeconfig "$kubeconfig" --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig")
  wait_for 60 "containerd answering" ctr -a "$K8S_DIR/containerd/containerd.sock" version
  wait_for 60 "apiserver ready" kc get --raw /readyz
  log "apiserver ready after $((SECONDS - t0)) s"
  start kube-controller-manager "$bin/kube-controller-manager" "${kubeconf_args[@]}" \
    --bind-address 127.0.0.1 --secure-port 10257 --use-service-account-credentials=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" --profiling=false
  start kube-scheduler "$bin/kube-scheduler" "${kubeconf_args[@]}" --bind-address 127.0.0.1 --secure-port 10259 --profiling=false
  images
  start kubelet "$bin/kubelet" --config "$K8S_DIR/kubelet/config.yaml" --kubeconfig "$kubeconfig" \
    --root-dir "$K8S_DIR/kubelet/root" --hostname-override "$node_name" --node-ip "$K8S_NODE_IP"
  start coredns "$bin/coredns" -conf "$K8S_DIR/Corefile"
  wait_for 120 "node Ready" kc wait --for=condition=Ready "node/$node_name" --timeout=2s
  log "node Ready after $((SECONDS - t0)) s"
  wait_for 60 "CoreDNS ready" curl -fsS http://127.0.0.1:18181/ready
  wait_for 60 "default service account" kc -n default get serviceaccount default
  for c in etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet coredns; do alive "$c"; done
  trap - EXIT INT TERM
  log "cluster up in $((SECONDS - t0)) s: KUBECONFIG=$kubeconfig, kubectl $bin/kubectl"
}

# kill_pid NAME stops the recorded process: SIGTERM, then SIGKILL after 15 s.
kill_pid() {
  local f=$pids/$1 pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$f"
}

down() {
  set +e
  [[ -d $K8S_DIR ]] || { log "nothing to tear down ($K8S_DIR does not exist)"; return 0; }
  log "tearing down"
  local sock=$K8S_DIR/containerd/containerd.sock
  # The pods first, while the kubelet runs: it stops their sandboxes, which
  # removes their veths and netns.
  if [[ -f $pids/kubelet && -f $pids/kube-apiserver ]] && kc get --raw /readyz >/dev/null 2>&1; then
    local ns
    for ns in $(kc get ns -o name 2>/dev/null | grep -v -e /kube- -e /default); do
      timeout 60 "$bin/kubectl" --kubeconfig "$kubeconfig" delete "$ns" --wait=false >/dev/null 2>&1
    done
    timeout 60 "$bin/kubectl" --kubeconfig "$kubeconfig" delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1
    local deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)) && [[ -n $(kc get pods -A -o name 2>/dev/null) ]]; do sleep 0.5; done
    [[ -z $(kc get pods -A -o name 2>/dev/null) ]] || log "pods still listed after 60 s: $(kc get pods -A -o name 2>/dev/null | tr '\n' ' ')"
  fi
  kill_pid coredns
  kill_pid kubelet
  # Whatever containers remain (the kubelet died, or did not finish): kill
  # their tasks so that the shims exit.
  if [[ -f $pids/containerd ]] && [[ -S $sock ]]; then
    local id
    for id in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      timeout 10 ctr -a "$sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1
    done
    for id in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      timeout 10 ctr -a "$sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1
    done
    for id in $(ctr -a "$sock" -n k8s.io containers ls -q 2>/dev/null); do
      timeout 10 ctr -a "$sock" -n k8s.io containers delete "$id" >/dev/null 2>&1
    done
  fi
  kill_pid kube-scheduler
  kill_pid kube-controller-manager
  kill_pid kube-apiserver
  kill_pid containerd
  kill_pid etcd
  # Shims whose containerd was ours (their command line names our socket).
  local p
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock" 2>/dev/null); do
    kill -KILL "$p" 2>/dev/null
  done
  # Pod netns left behind (not listed before up).
  if [[ -f $K8S_DIR/netns.before ]]; then
    local n
    for n in $(comm -13 "$K8S_DIR/netns.before" <(ls /run/netns 2>/dev/null | sort)); do
      [[ $n == cni-* ]] || continue
      ip netns delete "$n" 2>/dev/null || { umount "/run/netns/$n" 2>/dev/null; rm -f "/run/netns/$n"; }
    done
  fi
  # Veths of our bridge, then the bridge.
  local v
  for v in $(ip -o link show master "$K8S_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link delete "$v" 2>/dev/null
  done
  ip link delete "$K8S_BRIDGE" 2>/dev/null
  # Our ACCEPT rules, and the KUBE-* chains the kubelet made (not there before).
  while iptables -D FORWARD -i "$K8S_BRIDGE" -m comment --comment ringtrain-k8s -j ACCEPT 2>/dev/null; do :; done
  while iptables -D FORWARD -o "$K8S_BRIDGE" -m comment --comment ringtrain-k8s -j ACCEPT 2>/dev/null; do :; done
  local ipt table chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle; do
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do
        grep -q -- "^:$chain " "$K8S_DIR/$ipt.before" 2>/dev/null && continue
        # Rules elsewhere that jump to it, then the chain.
        "$ipt" -t "$table" -S 2>/dev/null | grep -- "-j $chain\( \|$\)" | grep -v "^-A $chain " | sed 's/^-A /-D /' |
          while read -r rule; do eval "$ipt -t $table $rule" 2>/dev/null; done
        "$ipt" -t "$table" -F "$chain" 2>/dev/null
        "$ipt" -t "$table" -X "$chain" 2>/dev/null
      done
    done
  done
  # The kubelet's links in /var/log/containers point into our pods-logs.
  local l
  for l in /var/log/containers/*.log; do
    [[ -L $l ]] && [[ $(readlink "$l") == "$K8S_DIR"/* ]] && rm -f "$l"
  done
  rmdir /var/log/containers 2>/dev/null
  # The CNI result cache of our network (libcni keeps it in /var/lib/cni).
  rm -rf /var/lib/cni/results/"$cni_net"-* 2>/dev/null
  rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
  # runc's default root for the namespace, should anything have used it.
  rm -rf /run/containerd/runc/k8s.io 2>/dev/null
  # Our cgroups, deepest first.
  local c
  for c in /sys/fs/cgroup/*/; do
    [[ -d $c${cgroup_root#/} ]] || continue
    find "$c${cgroup_root#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  # Mounts under the state folder (kubelet volumes, containerd snapshots).
  local m
  for m in $(awk -v d="$K8S_DIR" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  # The KUBE-* chains that were there before up (the check below).
  local before
  before=$(cat "$K8S_DIR/iptables.before" "$K8S_DIR/ip6tables.before" 2>/dev/null | awk '/^:KUBE-/ {print substr($1, 2)}')
  rm -rf "$K8S_DIR"
  local left=""
  [[ -e $K8S_DIR ]] && left+=" $K8S_DIR"
  ip link show "$K8S_BRIDGE" >/dev/null 2>&1 && left+=" link:$K8S_BRIDGE"
  iptables -S FORWARD 2>/dev/null | grep -q ringtrain-k8s && left+=" iptables:FORWARD"
  for ipt in iptables ip6tables; do
    for table in filter nat mangle; do
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do
        grep -qx -- "$chain" <<<"$before" || left+=" $ipt:$table:$chain"
      done
    done
  done
  pgrep -f "$K8S_DIR" >/dev/null 2>&1 && left+=" processes:$(pgrep -f "$K8S_DIR" | tr '\n' ,)"
  for c in /sys/fs/cgroup/*/; do [[ -d $c${cgroup_root#/} ]] && left+=" cgroup:$c${cgroup_root#/}"; done
  if [[ -n $left ]]; then
    log "FAIL: left behind:$left"
    return 1
  fi
  log "down: nothing left behind"
}

case ${1:-} in
  check) check ;;
  up) up ;;
  down) down ;;
  build) mkdir -p "$logs" && build ;;
  env) printf 'export KUBECONFIG=%s\nexport PATH=%s:$PATH\n' "$kubeconfig" "$bin" ;;
  -h | --help) sed -n '2,38p' "$0" ;;
  *) echo "usage: $0 check|up|down|env|build (see --help)" >&2; exit 2 ;;
esac
