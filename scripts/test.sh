#!/usr/bin/env bash
# The project's test command (README.md): static checks, the unit and
# integration tests, the race detector on the concurrent packages, the check
# that generated protobuf code is current, the dashboard in headless
# Chromium, and the Docker end-to-end tests when a Docker engine answers.
# Installs what it needs itself (protoc, Chromium) when it runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [[ -n "$unformatted" ]]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "generated protobuf code is current"
if ! command -v protoc >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing protoc (Debian package protobuf-compiler)"
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q protobuf-compiler) >/tmp/ringtrain-apt.log 2>&1 \
      || { echo "apt-get install protobuf-compiler failed:"; tail -20 /tmp/ringtrain-apt.log; exit 1; }
  fi
fi
if command -v protoc >/dev/null 2>&1; then
  bash proto/check.sh
else
  echo "SKIPPED: protoc is not installed and cannot be installed here (not root or no apt-get); generated code NOT checked"
fi

step "headless browser for the dashboard test (pkg/dashboard TestBrowser)"
have_browser() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; }
if ! have_browser; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Chromium (Debian package chromium)"
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/tmp/ringtrain-apt-chromium.log 2>&1 \
      || { echo "apt-get install chromium failed:"; tail -20 /tmp/ringtrain-apt-chromium.log; exit 1; }
  fi
fi
if have_browser; then
  echo "browser: $(command -v chromium || command -v chromium-browser || command -v google-chrome); TestBrowser runs in go test below"
else
  echo "SKIPPED: no Chromium and it cannot be installed here (not root or no apt-get); the dashboard's browser test will NOT run"
fi

step "go test"
go test -count=1 -timeout 15m ./...

step "go test -race (concurrent packages)"
go test -count=1 -race -timeout 15m ./pkg/allreduce/... ./pkg/membership ./pkg/worker ./pkg/coordinator/... ./pkg/cli/... ./pkg/report ./pkg/dashboard ./pkg/straggler

step "bench/links.sh: syntax, refused arguments, namespace cleanup (root only; a few seconds)"
bash bench/tools/links_selftest.sh

step "Kubernetes manifests, rendered and checked offline (separate module: kustomize and k8s types stay out of the binaries)"
(cd deploy/k8s/test && go vet -mod=mod ./... && go test -mod=mod -count=1 ./...)

if [[ -x scripts/e2e-docker.sh ]]; then
  step "docker end-to-end"
  if docker info >/dev/null 2>&1; then
    bash scripts/e2e-docker.sh
    step "docker chaos: a killed worker, a partitioned worker, a restarted coordinator"
    bash scripts/e2e-docker-chaos.sh
  else
    echo "SKIPPED: no Docker engine answers (docker info failed); the docker end-to-end tests did NOT run"
  fi
fi
step "Kubernetes end-to-end: a single-node cluster, the manifests' scenarios (scripts/e2e-k8s.sh)"
if why=$(bash scripts/k8s-cluster.sh check 2>&1); then
  bash scripts/e2e-k8s.sh
else
  echo "SKIPPED: the Kubernetes end-to-end test did NOT run: ${why//$'\n'/; }"
fi
step "all tests passed"
