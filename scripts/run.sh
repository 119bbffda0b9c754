#!/usr/bin/env bash
# Builds ptyhubd and runs it with a development configuration: 127.0.0.1:7700, a random HS256
# secret kept in the build tree, and a development token printed with the URL to open.
# Extra arguments are passed to ptyhubd (e.g. --listen 127.0.0.1:0 --log-level debug).
#
# scripts/run.sh --cluster N (1..9) runs cluster mode on this machine instead (docs/cluster.md): a
# throw-away redis-server on a free loopback port (no persistence, in a temporary directory) and N
# daemons node-1..node-N on 127.0.0.1:7700..7700+N-1, sharing the secret; extra arguments go to every
# node. Ctrl-C stops them all, then Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=0
if [ "${1-}" = "--cluster" ] || [[ "${1-}" == --cluster=* ]]; then
  if [ "$1" = "--cluster" ]; then cluster="${2-}"; shift 2 || shift; else cluster="${1#--cluster=}"; shift; fi
  [[ "$cluster" =~ ^[1-9]$ ]] || { echo "run.sh: --cluster takes a node count from 1 to 9" >&2; exit 2; }
  for arg in "$@"; do
    case "$arg" in
      --listen | --listen=* | --redis-url* | --node-id*) echo "run.sh: --cluster sets $arg for each node" >&2; exit 2 ;;
    esac
  done
fi

scripts/install-deps.sh
build=build
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPTYHUB_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target ptyhubd

dev="$build/dev"
mkdir -p "$dev" "$dev/repos"
secret="$dev/jwt-secret"
if [ ! -s "$secret" ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 > "$secret")
fi
token=$("$build/src/ptyhubd" token --sub "$(id -un)" \
  --scope "terminal:create terminal:read terminal:write git:run" --ttl 86400 --jwt-secret-file "$secret")

# Cluster mode: Redis, then the nodes; stopped by their PIDs when this script ends, the nodes first so that
# their terminals' exits reach Redis (Redis runs in its own session, out of reach of Ctrl-C).
stop_cluster() {
  trap - EXIT INT TERM
  local pid
  for pid in "${node_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${node_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$redis_dir"
}

run_cluster() {
  local redis_server=/usr/bin/redis-server port="" url i
  [ -x "$redis_server" ] || { echo "run.sh: $redis_server is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
  node_pids=()
  redis_pid=""
  redis_dir=$(mktemp -d "${TMPDIR:-/tmp}/ptyhub-cluster.XXXXXX")
  trap stop_cluster EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # A free loopback port (nothing answers a connect on it); another try if someone takes it first.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local candidate=$((20000 + RANDOM % 30000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then continue; fi
    setsid "$redis_server" --bind 127.0.0.1 --port "$candidate" --save "" --appendonly no --dir "$redis_dir" \
      --logfile "$redis_dir/redis.log" --daemonize no &
    redis_pid=$!
    for _ in $(seq 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    [ -n "$port" ] && break
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  done
  if [ -z "$port" ]; then
    echo "run.sh: redis-server did not start:" >&2
    cat "$redis_dir/redis.log" >&2 2>/dev/null || true
    exit 1
  fi

  url="redis://127.0.0.1:$port/0"
  for ((i = 1; i <= cluster; i++)); do
    # Log lines prefixed with the node, through a FIFO so that sed is no child of the daemon; sed ignores
    # Ctrl-C and ends when the node closes its end.
    mkfifo "$redis_dir/node-$i.log"
    (trap '' INT && exec sed -u "s/^/[node-$i] /") < "$redis_dir/node-$i.log" &
    "$build/src/ptyhubd" --listen "127.0.0.1:$((7699 + i))" --redis-url "$url" --node-id "node-$i" \
      --jwt-secret-file "$secret" --repos-root "$dev/repos" "$@" > "$redis_dir/node-$i.log" 2>&1 &
    node_pids+=($!)
  done
  # /readyz answers 200 once a node has joined through Redis.
  for ((i = 1; i <= cluster; i++)); do
    for _ in $(seq 100); do
      curl -fs -o /dev/null "http://127.0.0.1:$((7699 + i))/readyz" && break
      sleep 0.1
    done
  done
  echo
  echo "  ptyhubd cluster (development): $cluster node(s), redis-server on $url"
  for ((i = 1; i <= cluster; i++)); do
    echo "  node-$i: http://127.0.0.1:$((7699 + i))/#token=$token"
  done
  echo "  token:  $token"
  echo "  (valid 24 h on every node; the secret is $secret; Ctrl-C stops the nodes, then Redis)"
  echo
  # Until Ctrl-C (which the nodes get too), or until a node or Redis ends by itself.
  interrupted=0
  trap 'interrupted=1' INT TERM
  wait -n "${node_pids[@]}" "$redis_pid" || true
  [ "$interrupted" = 1 ] && exit 130
  echo "run.sh: a node or redis-server exited; stopping the others" >&2
  exit 1
}
[ "$cluster" -gt 0 ] && run_cluster "$@"

listen="127.0.0.1:7700"
default_listen=(--listen "$listen")
for ((i = 1; i <= $#; i++)); do
  case "${!i}" in
    --listen) j=$((i + 1)); listen="${!j}"; default_listen=() ;;
    --listen=*) listen="${!i#--listen=}"; default_listen=() ;;
  esac
done
cat <<MSG

  ptyhubd (development)
  open:   http://$listen/#token=$token
  token:  $token
  (valid 24 h; the secret is $secret; git operations work in $dev/repos)

MSG
exec "$build/src/ptyhubd" "${default_listen[@]}" --jwt-secret-file "$secret" --repos-root "$dev/repos" "$@"
