"""A redelivered message whose task id already holds SUCCESS is acknowledged without running
again (worker_deduplicate_successful_tasks, on by default in fnhost, off in Celery); with the
setting off, it runs again as with Celery."""

import json

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, park_envelope, wait_until


def run_then_redeliver(celery_app, broker) -> str:
    """Runs math.add(2, 3) to SUCCESS, then pushes the same message again marked redelivered
    (as kombu's restore marks it); returns the task id."""
    envelope = park_envelope(celery_app, broker, "math.add", args=[2, 3])
    task_id = envelope["headers"]["id"]
    broker.lpush("math.add", json.dumps(envelope))
    assert celery_app.AsyncResult(task_id).get(timeout=RESULT_TIMEOUT) == 5
    envelope["headers"]["redelivered"] = True
    broker.lpush("math.add", json.dumps(envelope))
    return task_id


def test_a_redelivered_task_that_already_succeeded_is_not_run_again(serve, make_functions, celery_app, redis_dbs):
    host = serve(make_functions(), "-l", "debug")
    task_id = run_then_redeliver(celery_app, redis_dbs.broker)
    host.wait_for_log(rf"math\.add\[{task_id}\] was redelivered but already succeeded", timeout=RESULT_TIMEOUT)
    assert host.log.count(f"math.add[{task_id}] started") == 1
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")


def test_with_deduplication_off_a_redelivered_task_runs_again(serve, make_functions, celery_app, redis_dbs, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("worker_deduplicate_successful_tasks: false\n")
    host = serve(make_functions(), "-l", "debug", "--config", config)
    task_id = run_then_redeliver(celery_app, redis_dbs.broker)
    wait_until(lambda: host.log.count(f"math.add[{task_id}] started") == 2, RESULT_TIMEOUT, "the redelivery to run")
    assert "already succeeded" not in host.log
