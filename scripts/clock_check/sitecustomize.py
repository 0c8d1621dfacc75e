"""Fakes the wall clock of a Python process for ``scripts/clock-check.sh``.

On the ``PYTHONPATH`` of a clock-check run, Python imports this module at start-up. When
``CLOCK_CHECK_OFFSET_S`` is set, the wall clock (``time.time``, ``datetime.now``,
``date.today``, ``time.localtime``…) is moved by that many seconds and keeps ticking, with
time-machine. The offset is from the real clock, so pytest and every Python process it
starts (children inherit the variable and the path) agree on the time. Monotonic clocks
are left alone. The variable's name avoids ``CALFLOW_``, which tests strip from children.
"""

from __future__ import annotations

import os

_OFFSET = os.environ.get("CLOCK_CHECK_OFFSET_S")
if _OFFSET:
    import time

    import time_machine

    time_machine.travel(time.time() + float(_OFFSET), tick=True).start()
