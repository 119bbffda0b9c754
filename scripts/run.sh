#!/usr/bin/env bash
# Builds ptyhubd and runs it with a development configuration: 127.0.0.1:7700, a random HS256
# secret kept in the build tree, and a development token printed with the URL to open.
# Extra arguments are passed to ptyhubd (e.g. --listen 127.0.0.1:0 --log-level debug).
set -euo pipefail
cd "$(dirname "$0")/.."

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
