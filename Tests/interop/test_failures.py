"""Task failures reach the Python producer as the task's exception type, raised by .get()."""

import pytest
from celery.exceptions import NotRegistered

from helpers import RESULT_TIMEOUT, task_meta


@pytest.fixture
def host(serve, make_functions):
    return serve(make_functions(), "-Q", "celery")


@pytest.mark.all_brokers
def test_division_by_zero_raises_zero_division_error(host, celery_app):
    r = celery_app.send_task("math.div", args=[1, 0], queue="math.div")
    with pytest.raises(ZeroDivisionError):
        r.get(timeout=RESULT_TIMEOUT)
    assert r.state == "FAILURE"
    assert isinstance(r.result, ZeroDivisionError)


def test_swift_plugin_error_raises_exception_named_empty_input(host, celery_app, redis_dbs):
    r = celery_app.send_task("text.require_nonempty", args=[""], queue="text.require_nonempty")
    with pytest.raises(Exception) as info:
        r.get(timeout=RESULT_TIMEOUT)
    assert type(info.value).__name__ == "EmptyInput"
    assert task_meta(redis_dbs.backend, r.id)["result"]["exc_type"] == "EmptyInput"


@pytest.mark.all_brokers
def test_unknown_task_fails_with_not_registered(host, celery_app):
    r = celery_app.send_task("no.such.task", args=[1])  # default route: the shared queue `celery`
    with pytest.raises(NotRegistered) as info:
        r.get(timeout=RESULT_TIMEOUT)
    assert "no.such.task" in str(info.value)
    assert celery_app.send_task("math.add", args=[2, 3]).get(timeout=RESULT_TIMEOUT) == 5


@pytest.mark.all_brokers
def test_unknown_task_in_a_function_queue_fails_with_not_registered(host, celery_app):
    r = celery_app.send_task("math.nosuch", args=[1], queue="math.add")
    with pytest.raises(NotRegistered):
        r.get(timeout=RESULT_TIMEOUT)
    assert celery_app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5


@pytest.mark.all_brokers
def test_shared_celery_queue_serves_every_function(host, celery_app):
    assert celery_app.send_task("math.add", args=[20, 22]).get(timeout=RESULT_TIMEOUT) == 42
    assert celery_app.send_task("text.upper", args=["abc"]).get(timeout=RESULT_TIMEOUT) == "ABC"


@pytest.mark.all_brokers
def test_failure_does_not_stop_the_next_task(host, celery_app):
    failing = celery_app.send_task("math.div", args=[1, 0], queue="math.div")
    ok = celery_app.send_task("math.div", args=[1, 4], queue="math.div")
    with pytest.raises(ZeroDivisionError):
        failing.get(timeout=RESULT_TIMEOUT)
    assert ok.get(timeout=RESULT_TIMEOUT) == 0.25
