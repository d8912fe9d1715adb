"""The Celery side of bench/bench.py: a stock Celery app with the same task fnhost's
functions/libmath.so registers. Broker and backend come from the command line (-b, --result-backend)."""

from celery import Celery

app = Celery("fnhost_bench")


@app.task(name="math.add")
def add(a, b):
    return a + b
