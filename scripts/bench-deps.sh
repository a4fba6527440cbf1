#!/usr/bin/env bash
# Debian packages only the benchmarks need (idempotent, as root; concurrent installs wait for the dpkg lock):
#   wrk          the C load generator bench_profile_vs_wrk.py compares escli profile with
#   nginx-light  a trivial local server answering every search with one canned answer, so the load generator,
#                not the engine, is what runs out (profile --workers against one process)
# and, when node and npm are there, elasticdump (the version bench_copy.py and bench_export.py compare with) into
# the project-local bench/.node (git-ignored), never globally.
set -euo pipefail
cd "$(dirname "$0")/.."
ELASTICDUMP_VERSION=6.125.1
if command -v npm >/dev/null && [ ! -x bench/.node/node_modules/.bin/elasticdump ]; then
  echo "bench-deps: installing elasticdump $ELASTICDUMP_VERSION into bench/.node" >&2
  mkdir -p bench/.node
  npm install --prefix bench/.node --no-audit --no-fund --loglevel=error "elasticdump@$ELASTICDUMP_VERSION" >&2
fi
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "bench-deps: please install: ${need[*]}" >&2
  exit 1
fi
echo "bench-deps: installing ${need[*]}" >&2
lock=(-o DPkg::Lock::Timeout=600)
apt-get "${lock[@]}" update -qq
# policy-rc.d: the package must not start (and keep running) a system nginx on port 80; the bench starts its own.
# A policy already in place (container images ship one) is left exactly as it is.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq --no-install-recommends "${need[@]}" >&2
