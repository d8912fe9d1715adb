"""The threads pool (-P threads): one worker process per plugin runs up to -c tasks at once on
threads of its own; a hard time limit replaces the whole process, and the other tasks that were
running in it end per their own policy (WorkerLostError by default)."""

import pytest
from billiard.exceptions import TimeLimitExceeded, WorkerLostError

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, wait_until


def test_threads_pool_runs_tasks_concurrently_in_one_process(serve, make_functions, celery_app):
    host = serve(make_functions(), "-P", "threads", "-c", "2")
    assert "pool threads" in host.log
    results = [celery_app.send_task("math.slow", args=[1.5], queue="math.slow") for _ in range(2)]
    a, b = (r.get(timeout=RESULT_TIMEOUT) for r in results)
    assert a["pid"] == b["pid"], "both ran in the plugin's one worker process"
    assert a["start"] < b["end"] and b["start"] < a["end"], "they overlapped in time"
    assert celery_app.send_task("math.add", args=[1, 2], queue="math.add").get(timeout=RESULT_TIMEOUT) == 3


def test_hard_time_limit_in_the_threads_pool_replaces_the_process_and_fails_its_other_tasks(serve, make_functions, celery_app, redis_dbs):
    serve(make_functions(), "-P", "threads", "-c", "2")
    limited = celery_app.send_task("math.slow", args=[30], queue="math.slow", time_limit=1)
    neighbour = celery_app.send_task("math.slow", args=[30], queue="math.slow")
    with pytest.raises(TimeLimitExceeded):
        limited.get(timeout=RESULT_TIMEOUT)
    with pytest.raises(WorkerLostError):
        neighbour.get(timeout=RESULT_TIMEOUT)
    after = celery_app.send_task("math.slow", args=[0], queue="math.slow").get(timeout=RESULT_TIMEOUT)
    assert set(after) == {"pid", "start", "end"}
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")


def test_unknown_pool_kind_is_refused_clearly(fnhost_cli, make_functions):
    done = fnhost_cli("serve", "--functions", make_functions(), "-P", "gevent")
    assert done.returncode != 0
    assert "unknown pool 'gevent'" in done.stderr
