"""The raw `celery-task-meta-<id>` documents, field by field, as Celery 5.7 stores them
(celery-protocol.md section 4)."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from celery.exceptions import NotRegistered

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, task_meta, wait_until

FIELDS = {"status", "result", "traceback", "children", "date_done", "task_id"}


@pytest.fixture
def host(serve, make_functions):
    return serve(make_functions(), "-Q", "celery")


def assert_date_done_is_recent_iso_with_offset(meta):
    done = datetime.fromisoformat(meta["date_done"])
    assert done.utcoffset() is not None, meta["date_done"]
    assert abs(datetime.now(timezone.utc) - done) < timedelta(hours=1), meta["date_done"]


def assert_exception_document(meta, task_id, exc_type, exc_module):
    assert FIELDS <= set(meta), meta
    assert meta["status"] == "FAILURE"
    assert meta["task_id"] == task_id
    assert meta["children"] == []
    assert isinstance(meta["traceback"], str), meta
    assert_date_done_is_recent_iso_with_offset(meta)
    exc = meta["result"]
    assert set(exc) >= {"exc_type", "exc_message", "exc_module"}, exc
    assert (exc["exc_type"], exc["exc_module"]) == (exc_type, exc_module), exc
    assert isinstance(exc["exc_message"], list), exc


def test_success_document_has_celery_fields(host, celery_app, redis_dbs):
    r = celery_app.send_task("math.add", args=[2, 3], queue="math.add")
    assert r.get(timeout=RESULT_TIMEOUT) == 5
    meta = task_meta(redis_dbs.backend, r.id)
    assert FIELDS <= set(meta), meta
    assert meta["status"] == "SUCCESS"
    assert meta["result"] == 5
    assert meta["traceback"] is None
    assert meta["children"] == []
    assert meta["task_id"] == r.id
    assert_date_done_is_recent_iso_with_offset(meta)


def test_result_is_written_only_to_the_backend_database(host, celery_app, redis_dbs):
    r = celery_app.send_task("math.add", args=[2, 3], queue="math.add")
    r.get(timeout=RESULT_TIMEOUT)
    assert redis_dbs.broker.get(f"celery-task-meta-{r.id}") is None
    assert redis_dbs.backend.exists(f"celery-task-meta-{r.id}")


def test_success_result_key_expires_after_one_day_by_default(host, celery_app, redis_dbs):
    r = celery_app.send_task("math.add", args=[2, 3], queue="math.add")
    r.get(timeout=RESULT_TIMEOUT)
    assert 86400 - 600 < redis_dbs.backend.ttl(f"celery-task-meta-{r.id}") <= 86400


def test_failure_document_of_a_builtin_exception(host, celery_app, redis_dbs):
    r = celery_app.send_task("math.div", args=[1, 0], queue="math.div")
    with pytest.raises(ZeroDivisionError):
        r.get(timeout=RESULT_TIMEOUT)
    assert_exception_document(task_meta(redis_dbs.backend, r.id), r.id, "ZeroDivisionError", "builtins")


def test_failure_document_of_not_registered(host, celery_app, redis_dbs):
    r = celery_app.send_task("no.such.task")
    with pytest.raises(NotRegistered):
        r.get(timeout=RESULT_TIMEOUT)
    meta = task_meta(redis_dbs.backend, r.id)
    assert_exception_document(meta, r.id, "NotRegistered", "celery.exceptions")
    assert "no.such.task" in json.dumps(meta["result"]["exc_message"])


def test_failure_document_of_a_plugin_defined_exception(host, celery_app, redis_dbs):
    r = celery_app.send_task("text.require_nonempty", args=[""], queue="text.require_nonempty")
    with pytest.raises(Exception):
        r.get(timeout=RESULT_TIMEOUT)
    meta = task_meta(redis_dbs.backend, r.id)
    assert meta["result"]["exc_type"] == "EmptyInput"
    assert isinstance(meta["result"]["exc_module"], str) and isinstance(meta["result"]["exc_message"], list)


def test_result_is_published_on_the_task_channel_with_its_task_id(host, celery_app, redis_dbs):
    pubsub = redis_dbs.backend.pubsub()
    task_id = "published-result-check"
    pubsub.subscribe(f"celery-task-meta-{task_id}")
    pubsub.get_message(timeout=5)  # the subscribe confirmation
    celery_app.send_task("math.add", args=[4, 5], queue="math.add", task_id=task_id)
    message = None
    for _ in range(200):
        message = pubsub.get_message(timeout=0.1)
        if message and message["type"] == "message":
            break
    pubsub.close()
    assert message and message["type"] == "message", "nothing published on the task's channel"
    meta = json.loads(message["data"])
    assert (meta["status"], meta["result"], meta["task_id"]) == ("SUCCESS", 9, task_id)


def test_stored_success_is_not_overwritten_by_a_redelivery(host, celery_app, redis_dbs):
    r = celery_app.send_task("math.add", args=[2, 3], queue="math.add")
    assert r.get(timeout=RESULT_TIMEOUT) == 5
    first = task_meta(redis_dbs.backend, r.id)
    # the same task id delivered again, now failing
    again = celery_app.send_task("math.div", args=[1, 0], queue="math.div", task_id=r.id)
    assert again.id == r.id
    wait_until(lambda: redis_dbs.broker.llen("math.div") == 0, 10, "the redelivery to be fetched")
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "the redelivery to be settled")
    assert task_meta(redis_dbs.backend, r.id) == first
