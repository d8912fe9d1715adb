"""`--config fnhost.yml`: settings and per-task overrides; flags beat the environment, which beats
the file."""

import pytest

from helpers import RESULT_TIMEOUT, task_meta

DEAD = "redis://127.0.0.1:1/0"  # nothing listens on port 1: a host that picks this never gets ready


@pytest.fixture
def config(tmp_path):
    def write(text: str):
        path = tmp_path / "fnhost.yml"
        path.write_text(text)
        return path

    return write


def urls_yaml(broker, backend):
    return f'broker_url: "{broker}"\nresult_backend: "{backend}"\n'


def test_config_task_queue_override_moves_the_function_to_that_queue(serve, make_functions, config, celery_app, redis_dbs):
    path = config("tasks:\n  math.add:\n    queue: arith\n")
    serve(make_functions(), "--config", path)
    parked = celery_app.send_task("math.add", args=[1, 1], queue="math.add")
    assert celery_app.send_task("math.add", args=[2, 3], queue="arith").get(timeout=RESULT_TIMEOUT) == 5
    assert redis_dbs.broker.llen("math.add") == 1
    assert task_meta(redis_dbs.backend, parked.id) is None
    # other functions keep their default queues
    assert celery_app.send_task("math.mul", args=[2, 3], queue="math.mul").get(timeout=RESULT_TIMEOUT) == 6


def test_config_file_supplies_broker_and_backend(serve, make_functions, config, celery_app, redis_dbs):
    path = config(urls_yaml(redis_dbs.broker_url, redis_dbs.backend_url))
    serve(make_functions(), "--config", path, urls=False)
    assert celery_app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5


def test_environment_beats_config_file(serve, make_functions, config, celery_app, redis_dbs):
    path = config(urls_yaml(DEAD, DEAD))
    env = {"CELERY_BROKER_URL": redis_dbs.broker_url, "CELERY_RESULT_BACKEND": redis_dbs.backend_url}
    serve(make_functions(), "--config", path, urls=False, env=env)
    assert celery_app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5


def test_flags_beat_environment_and_config_file(serve, make_functions, config, celery_app):
    path = config(urls_yaml(DEAD, DEAD))
    env = {"CELERY_BROKER_URL": DEAD, "CELERY_RESULT_BACKEND": DEAD}
    serve(make_functions(), "--config", path, env=env)  # urls=True: --broker/--backend flags
    assert celery_app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5


def test_config_result_expires_sets_the_result_key_ttl(serve, make_functions, config, celery_app, redis_dbs):
    serve(make_functions(), "--config", config("result_expires: 600\n"))
    r = celery_app.send_task("math.add", args=[2, 3], queue="math.add")
    assert r.get(timeout=RESULT_TIMEOUT) == 5
    assert 0 < redis_dbs.backend.ttl(f"celery-task-meta-{r.id}") <= 600


def test_config_worker_concurrency_runs_two_tasks_at_once(serve, make_functions, config, celery_app):
    serve(make_functions(), "--config", config("worker_concurrency: 2\nworker_prefetch_multiplier: 1\n"))
    a = celery_app.send_task("math.slow", args=[1.5], queue="math.slow")
    b = celery_app.send_task("math.slow", args=[1.5], queue="math.slow")
    a, b = a.get(timeout=RESULT_TIMEOUT), b.get(timeout=RESULT_TIMEOUT)
    assert a["pid"] != b["pid"]
    assert max(a["start"], b["start"]) < min(a["end"], b["end"]), f"did not overlap: {a} {b}"
