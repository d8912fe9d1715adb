"""Task options a plugin registers with (Tests/fixtures/plugins/options.c): ignore_result, queue,
and an unknown option key that refuses the registration."""

import pytest
from celery.exceptions import NotRegistered

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, task_meta, wait_until


@pytest.fixture
def host(serve, make_functions):
    return serve(make_functions("options"), "-c", "1", "-Q", "celery")


def test_ignore_result_task_runs_but_never_writes_a_result_key(host, celery_app, redis_dbs):
    r = celery_app.send_task("opts.ignored", queue="opts.ignored")
    # ran and settled: fetched from its queue, then acknowledged (acks_late: after it finished)
    wait_until(lambda: redis_dbs.broker.llen("opts.ignored") == 0, 10, "opts.ignored to be fetched")
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "opts.ignored to be acknowledged")
    # a later task through the same host has finished too
    assert celery_app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2
    # acks_late: the result is written first and the delivery acknowledged after it, as Celery's
    # worker does, so the acknowledgement may land just after the producer holds the result
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "math.add to be acknowledged")
    assert task_meta(redis_dbs.backend, r.id) is None
    assert redis_dbs.backend.keys(f"*{r.id}*") == []
    assert r.state == "PENDING"


def test_ignore_result_tasks_back_to_back_on_one_queue_all_run(host, celery_app, redis_dbs):
    ids = [celery_app.send_task("opts.ignored", queue="opts.ignored").id for _ in range(5)]
    wait_until(lambda: redis_dbs.broker.llen("opts.ignored") == 0, 15, "every opts.ignored to be fetched")
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 15, "every opts.ignored to be acknowledged")
    assert all(task_meta(redis_dbs.backend, i) is None for i in ids)


def test_queue_option_consumes_custom_queue_instead_of_the_task_name(host, celery_app, redis_dbs):
    parked = celery_app.send_task("opts.queue", queue="opts.queue")
    r = celery_app.send_task("opts.queue", queue="custom-q")
    r.get(timeout=RESULT_TIMEOUT)
    assert r.state == "SUCCESS"
    assert redis_dbs.broker.llen("opts.queue") == 1
    assert task_meta(redis_dbs.backend, parked.id) is None


def test_unknown_option_key_refuses_the_registration_naming_the_key(host, celery_app):
    host.wait_for_log(r"no_such_option")
    with pytest.raises(NotRegistered):
        celery_app.send_task("opts.badkey").get(timeout=RESULT_TIMEOUT)  # via the shared queue
    # the plugin's other tasks are unaffected
    r = celery_app.send_task("opts.queue", queue="custom-q")
    r.get(timeout=RESULT_TIMEOUT)
    assert r.state == "SUCCESS"


def test_refused_registration_is_absent_from_fnhost_list(make_functions, fnhost_cli):
    functions = make_functions("options", examples=False)
    out = fnhost_cli("list", "--functions", functions)
    assert out.returncode == 0, out.stderr
    names = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    assert {"opts.early_ack", "opts.ignored", "opts.queue"} <= names, out.stdout
    assert "opts.badkey" not in names, out.stdout


@pytest.mark.all_brokers(["redis", "amqp+rpc"])
def test_track_started_stores_started_while_the_task_runs(serve, make_functions, celery_app, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("tasks:\n  math.slow: { track_started: true }\n")
    serve(make_functions(), "-c", "1", "--config", config)
    result = celery_app.send_task("math.slow", args=[2], queue="math.slow")
    wait_until(lambda: result.state == "STARTED", RESULT_TIMEOUT, "the STARTED state")
    assert isinstance(result.info["pid"], int) and result.info["hostname"]
    assert result.get(timeout=RESULT_TIMEOUT)["end"] >= 0
    assert result.state == "SUCCESS"
