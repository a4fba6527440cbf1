#!/usr/bin/env bash
# Debian packages only the tests need (idempotent, as root; concurrent installs wait for the dpkg lock):
#   prometheus  `promtool check metrics` validates health's and profile's Prometheus output
#   chromium    headless screenshots of profile's HTML report, checked as a person would look at it
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "test-deps: please install: ${need[*]}" >&2
  exit 1
fi
echo "test-deps: installing ${need[*]}" >&2
lock=(-o DPkg::Lock::Timeout=600)
apt-get "${lock[@]}" update -qq
# --no-install-recommends: prometheus alone would pull in a running service's extras.
DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq --no-install-recommends "${need[@]}" >&2
