# shellcheck shell=bash
# shellcheck disable=SC2154 # project and compose_file are set by the sourcing script
# Helpers shared by the Docker end-to-end scripts (sourced, not run).
# The sourcing script sets E2E_NAME (the log prefix) first, and later the
# variables the helpers read: project and compose_file.

log() { printf '[%s %s] %s\n' "$E2E_NAME" "$(date +%T)" "$*"; }

fail() {
  printf '[%s %s] FAIL: %s\n' "$E2E_NAME" "$(date +%T)" "$*" >&2
  exit 1
}

# The compose tool: $E2E_COMPOSE (e.g. "docker compose"), else docker-compose
# if installed, else docker compose.
if [[ -n ${E2E_COMPOSE:-} ]]; then
  read -r -a compose_cmd <<<"$E2E_COMPOSE"
elif docker-compose version >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
else
  echo "[$E2E_NAME] FAIL: neither docker-compose nor 'docker compose' is installed" >&2
  exit 1
fi

# bounded SECONDS COMMAND... runs the command under a deadline. It runs in
# the background and is waited for, so that a signal to the script (Ctrl-C,
# SIGTERM) is handled at once: the trap stops the command and tears down.
child=""
bounded() {
  local t=$1
  shift
  timeout --kill-after=10 "$t" "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=""
  return "$rc"
}

# stop_child stops the command bounded() is waiting for, if any.
stop_child() {
  [[ -n $child ]] || return 0
  kill -TERM "$child" 2>/dev/null
  local deadline=$((SECONDS + 30))
  while kill -0 "$child" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  kill -KILL "$child" 2>/dev/null
  wait "$child" 2>/dev/null
  child=""
}

# compose SECONDS ARGS... runs the compose tool on the current project.
compose() {
  local t=$1
  shift
  bounded "$t" "${compose_cmd[@]}" -p "$project" -f "$compose_file" "$@"
}

# containers SERVICE lists the IDs of the service's containers, stopped ones
# included (the labels are the same for docker-compose v1 and v2).
containers() {
  timeout 30 docker ps -aq --no-trunc \
    --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1"
}
