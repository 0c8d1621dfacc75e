#!/usr/bin/env bash
# Runs the test suite (or the pytest arguments given) under faked clocks, to prove it does
# not depend on the day, the time of day, the time zone or a DST change:
#
#   late     2026-12-03 23:50 UTC (a Thursday), TZ=UTC: the date changes ten minutes in
#   dst      2027-03-28 00:50 UTC, TZ=Europe/Berlin: 02:00 CET becomes 03:00 CEST ten
#            minutes in (CLOCK_CHECK_DST_TZ=America/New_York with
#            CLOCK_CHECK_DST_AT='2027-03-14 06:50:00' checks the US change instead)
#   morning  2026-12-07 06:10 UTC (a Monday), TZ=America/Los_Angeles: the first open
#            slot of the sandbox is today, past 02:00 UTC, and the local date is still
#            yesterday's
#
#   bash scripts/clock-check.sh                       # every clock, the whole suite
#   bash scripts/clock-check.sh tests/sandbox -x      # every clock, a subset
#   CLOCK_CHECK_ONLY="late dst" bash scripts/clock-check.sh tests/engine
#
# The wall clock is faked with time-machine (a dev dependency, installed here when missing)
# in pytest and in every Python process it starts: scripts/clock_check/sitecustomize.py is
# put first on PYTHONPATH and moves the clock by CLOCK_CHECK_OFFSET_S seconds, computed at
# launch from the real clock, so the clock keeps ticking and parent and child processes
# agree on the time. Monotonic clocks are left alone (timeouts and rate-limit windows are
# about elapsed time, not dates). TZ is set for the whole run. libfaketime was tried
# first: its 0.9.10 (Debian 12) breaks Python 3.11's time.sleep (EINVAL) or, with the
# monotonic clock faked too, hangs threading waits, so it cannot run this suite.
# Processes that are not Python (PostgreSQL, Chromium) and SQLite's CURRENT_TIMESTAMP keep
# the real clock: code that compares its own clock with the database's would show up here.
# Exit code: 0 when every run passed, else the last failing run's pytest code.
set -uo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
export VENV
LATE_AT=${CLOCK_CHECK_LATE_AT:-2026-12-03 23:50:00}
LATE_TZ=${CLOCK_CHECK_LATE_TZ:-UTC}
DST_AT=${CLOCK_CHECK_DST_AT:-2027-03-28 00:50:00}
DST_TZ=${CLOCK_CHECK_DST_TZ:-Europe/Berlin}
MORNING_AT=${CLOCK_CHECK_MORNING_AT:-2026-12-07 06:10:00}
MORNING_TZ=${CLOCK_CHECK_MORNING_TZ:-America/Los_Angeles}
ONLY=" ${CLOCK_CHECK_ONLY:-late dst morning} "

if ! "$VENV/bin/python" -c "import time_machine" 2>/dev/null; then
  echo "clock-check: installing time-machine into $VENV" >&2
  "$VENV/bin/pip" install -q "time-machine==3.5.1" || exit 2
fi
HERE=$(pwd)

# run NAME "YYYY-MM-DD HH:MM:SS" (UTC) ZONE pytest-args...
run() {
  local name=$1 at=$2 zone=$3
  shift 3
  local target offset rc
  target=$(date -u -d "$at" +%s) || exit 2
  offset=$((target - $(date -u +%s)))
  echo "clock-check: $name: starting at $at UTC, TZ=$zone (offset $offset s)" >&2
  # sitecustomize imported time-machine before pytest, which warns that it cannot rewrite
  # the asserts of that plugin: only this warning is ignored
  local ignore="ignore:Module already imported so cannot be rewritten; time_machine"
  CLOCK_CHECK_OFFSET_S="$offset" TZ="$zone" \
    PYTEST_ADDOPTS="-W '$ignore:pytest.PytestAssertRewriteWarning' ${PYTEST_ADDOPTS:-}" \
    PYTHONPATH="$HERE/scripts/clock_check${PYTHONPATH:+:$PYTHONPATH}" \
    bash scripts/run-tests.sh "$@"
  rc=$?
  echo "clock-check: $name: pytest exit code $rc" >&2
  return "$rc"
}

status=0
case $ONLY in *" late "*) run late "$LATE_AT" "$LATE_TZ" "$@" || status=$? ;; esac
case $ONLY in *" dst "*) run dst "$DST_AT" "$DST_TZ" "$@" || status=$? ;; esac
case $ONLY in *" morning "*) run morning "$MORNING_AT" "$MORNING_TZ" "$@" || status=$? ;; esac
exit "$status"
