#!/usr/bin/env bash
# Installs the Debian 12 packages ptyhub needs to build, run and test. Idempotent: installs only what
# is missing, and runs apt-get update only when something is.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libwebsockets-dev libwebsockets-evlib-uv libuv1-dev
  nlohmann-json3-dev libtomlplusplus-dev libssl-dev doctest-dev
  git curl procps openssl tmux
  libsystemd-dev systemd
  chromium nginx-light python3-websockets
  redis-server libhiredis-dev
  libvterm-dev vim-tiny less procps
  clang-14 libclang-rt-14-dev util-linux  # scripts/fuzz.sh (libFuzzer), scripts/soak.sh (prlimit)
)
# The web client is bundled with npm; Debian's nodejs/npm only when no node is installed already.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
