"""A plugin that kills its worker process (Tests/fixtures/plugins/crash.c) fails only its own call,
with WorkerLostError; the host and every other function keep serving."""

import pytest
from billiard.exceptions import WorkerLostError

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, wait_until


@pytest.fixture
def host(serve, make_functions):
    return serve(make_functions("crash"), "-c", "2")


def call(app, name, *args):
    return app.send_task(name, args=list(args), queue=name).get(timeout=RESULT_TIMEOUT)


@pytest.mark.parametrize("crash", ["crash.segv", "crash.abort", "crash.exit"])
def test_crashing_plugin_fails_with_worker_lost_and_host_keeps_serving(host, celery_app, redis_dbs, crash):
    with pytest.raises(WorkerLostError):
        call(celery_app, crash)
    assert host.proc.poll() is None, "the host died with its worker"
    assert call(celery_app, "crash.ok") == "ok"
    assert call(celery_app, "math.add", 2, 3) == 5
    assert call(celery_app, "text.upper", "still here") == "STILL HERE"
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty after the crash")


@pytest.mark.all_brokers
def test_crash_plugin_pool_is_replaced_after_a_segfault(host, celery_app):
    before = call(celery_app, "crash.pid")
    assert type(before) is int and before not in (host.pid, 0)
    with pytest.raises(WorkerLostError):
        call(celery_app, "crash.segv")
    after = call(celery_app, "crash.pid")
    assert type(after) is int and after != host.pid


@pytest.mark.all_brokers
def test_repeated_crashes_do_not_exhaust_the_host(host, celery_app):
    for _ in range(5):
        with pytest.raises(WorkerLostError):
            call(celery_app, "crash.segv")
    assert call(celery_app, "crash.ok") == "ok"
    assert call(celery_app, "math.mul", 3, 4) == 12


@pytest.mark.all_brokers
def test_crash_while_other_tasks_run_fails_only_the_crashing_call(host, celery_app):
    slow = celery_app.send_task("math.slow", args=[1], queue="math.slow")
    crash = celery_app.send_task("crash.abort", queue="crash.abort")
    with pytest.raises(WorkerLostError):
        crash.get(timeout=RESULT_TIMEOUT)
    assert set(slow.get(timeout=RESULT_TIMEOUT)) == {"pid", "start", "end"}
