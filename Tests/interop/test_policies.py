"""The policy seams that already work end to end: hard and soft time limits (task options and
the producer's `timelimit` header, [hard, soft]), FNHOST_RETRY up to max_retries, and autoretry
with exponential backoff. A durable ETA store and the dead-letter queue are the policy issue's."""

import json
import time

import pytest
from billiard.exceptions import TimeLimitExceeded
from celery.exceptions import MaxRetriesExceededError

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, park_envelope, resident_kb, wait_until


@pytest.fixture
def host(serve, make_functions, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("tasks:\n  math.slow: { time_limit: 1 }\n")
    return serve(make_functions("retry"), "-c", "2", "--config", config)


def test_hard_time_limit_kills_the_worker_and_fails_with_time_limit_exceeded(host, celery_app, redis_dbs):
    with pytest.raises(TimeLimitExceeded):
        celery_app.send_task("math.slow", args=[30], queue="math.slow").get(timeout=RESULT_TIMEOUT)
    assert "hard time limit" in host.log
    assert celery_app.send_task("math.add", args=[1, 2], queue="math.add").get(timeout=RESULT_TIMEOUT) == 3
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")


def test_a_time_limit_holds_nothing_once_its_task_has_ended(serve, make_functions, celery_app, redis_dbs, tmp_path):
    """A task's hard time limit is kept with the running task, not as a timer that outlives it:
    a timer per task held ~500 bytes for `time_limit` seconds, 50 MB after 100,000 quick tasks
    with `time_limit: 600` (10 MB after the 20,000 here)."""
    config = tmp_path / "fnhost.yml"
    config.write_text("tasks:\n  math.add: { time_limit: 600 }\n")
    host = serve(make_functions(), "-c", "2", "--config", config)
    envelope = json.dumps(park_envelope(celery_app, redis_dbs.broker, "math.add", args=[1, 2]))
    assert celery_app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2
    before = resident_kb(host.pid)
    for _ in range(4):
        pipe = redis_dbs.broker.pipeline(transaction=False)
        for _ in range(5000):
            pipe.lpush("math.add", envelope)
        pipe.execute()
        wait_until(lambda: redis_dbs.broker.llen("math.add") == 0, 120, "the queue to drain")
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 30, "every delivery to be acknowledged")
    grown = resident_kb(host.pid) - before
    assert grown < 4096, f"the host's resident memory grew by {grown} KB over 20,000 tasks with a time limit"


@pytest.mark.all_brokers
def test_timelimit_header_soft_limit_makes_should_stop_say_yes(host, celery_app):
    # The header [hard, soft] beats the task's option; math.slow stops early once should_stop is 1.
    value = celery_app.send_task("math.slow", args=[20], queue="math.slow", time_limit=30, soft_time_limit=0.5).get(timeout=RESULT_TIMEOUT)
    assert value["end"] - value["start"] < 20


def test_retry_republishes_until_max_retries_then_fails(host, celery_app, redis_dbs):
    result = celery_app.send_task("retry.always", queue="retry.always")
    with pytest.raises(MaxRetriesExceededError):
        result.get(timeout=RESULT_TIMEOUT)
    assert host.log.count(f"retry.always[{result.id}] asks for a retry") == 4
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")


def test_autoretry_with_backoff_retries_then_fails_with_the_tasks_own_exception(serve, make_functions, celery_app, redis_dbs, tmp_path):
    config = tmp_path / "autoretry.yml"
    config.write_text("tasks:\n  math.div: { autoretry: true, max_retries: 2, retry_backoff: true, retry_backoff_max: 1, retry_jitter: false }\n")
    host = serve(make_functions(), "-c", "1", "--config", config)
    result = celery_app.send_task("math.div", args=[1, 0], queue="math.div")
    with pytest.raises(ZeroDivisionError):
        result.get(timeout=RESULT_TIMEOUT)
    # The first run and two retries, each a ZeroDivisionError.
    assert host.log.count(f"math.div[{result.id}] failed: ZeroDivisionError") == 3
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")


def test_rate_limit_spaces_a_functions_starts_per_host(serve, make_functions, celery_app, tmp_path):
    config = tmp_path / "rate.yml"
    config.write_text('tasks:\n  math.slow: { rate_limit: "4/s" }\n')
    serve(make_functions(), "-c", "4", "--config", config)
    results = [celery_app.send_task("math.slow", args=[0], queue="math.slow") for _ in range(5)]
    starts = sorted(r.get(timeout=RESULT_TIMEOUT)["start"] for r in results)
    # A lower bound only (a slow machine spaces them more): 4/s means at least 0.25 s apart.
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.25 - 0.01, gaps
    # Another function is not held back by math.slow's limit.
    assert celery_app.send_task("math.add", args=[2, 2], queue="math.add").get(timeout=RESULT_TIMEOUT) == 4
