#!/usr/bin/env bash
# Runs the whole test suite. pytest's exit code 5 (no tests collected) is a failure here:
# a suite that ran nothing proves nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# The browser tests drive Debian's Chromium, never a browser Playwright downloads.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
CHROMIUM=${CALFLOW_CHROMIUM:-/usr/bin/chromium}

ensure_chromium() {
  [ -x "$CHROMIUM" ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "run-tests: $CHROMIUM is missing and there is no apt-get: the browser tests" \
      "will skip (and fail under CI=true)" >&2
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "run-tests: installing Chromium for the browser tests (apt-get install chromium)" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q chromium \
    || { $sudo apt-get update -q && $sudo apt-get install -y -q chromium; } \
    || echo "run-tests: could not install Chromium; the browser tests will skip" \
      "(and fail under CI=true)" >&2
}

# The docs test runs the README's and docs/' shell commands, which use jq and curl.
ensure_tools() {
  local missing=()
  for tool in jq curl; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "run-tests: ${missing[*]} missing and there is no apt-get: the docs test will fail" >&2
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "run-tests: installing ${missing[*]} for the docs test" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "${missing[@]}" \
    || { $sudo apt-get update -q && $sudo apt-get install -y -q "${missing[@]}"; } \
    || echo "run-tests: could not install ${missing[*]}; the docs test will fail" >&2
}

ensure_chromium
ensure_tools
"$VENV/bin/pytest" -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; failing" >&2
  exit 1
fi
exit "$rc"
