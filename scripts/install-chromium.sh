#!/usr/bin/env bash
# Debian's chromium for the PWA browser tests (tests/pwa). Playwright drives it through
# executable_path; it never downloads a browser of its own (`playwright install` is not used).
# Without root or apt-get it only says what is missing: the tests then skip, except under
# CI=true, where they fail.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Please install Debian's chromium (apt-get install chromium) for the browser tests" >&2
  exit 0
fi
echo "installing chromium" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
