#!/usr/bin/env bash
# Install the system tools the project's scripts need, if missing (Debian; as root, as CI runs).
set -euo pipefail
need=()
command -v curl >/dev/null || need+=(curl)
command -v unzip >/dev/null || need+=(unzip)
command -v openssl >/dev/null || need+=(openssl)
command -v mvn >/dev/null || need+=(maven)
ls /usr/lib/jvm/*/bin/java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: please install: ${need[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
