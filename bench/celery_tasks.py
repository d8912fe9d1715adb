"""The Celery side of bench/bench.py: a stock Celery app with the same tasks fnhost runs from
functions/libmath.so (math.add) and bench/plugins/spin.c (bench.spin). Broker and backend come
from the command line (-b, --result-backend)."""

import time

from celery import Celery

app = Celery("fnhost_bench")


@app.task(name="math.add")
def add(a, b):
    return a + b


@app.task(name="bench.spin")
def spin(us):
    """Busy-waits `us` microseconds of this thread's CPU time (work, not sleep), as spin.c does."""
    end = time.thread_time_ns() + us * 1000
    while time.thread_time_ns() < end:
        pass
    return us
