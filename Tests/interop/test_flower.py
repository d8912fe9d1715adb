"""The real Flower from PyPI, pointed at the same Redis broker as fnhost: its HTTP API lists the
fnhost host as online (from worker heartbeats) with its inspect data, and shows its tasks with
their states and runtimes (from task events, which Flower turns on with `enable_events`)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from helpers import RESULT_TIMEOUT, StreamLog, clean_env, wait_until

NODE = "flower@interop"
FLOWER_TIMEOUT = 60  # seconds for Flower to start, see the host and get its events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def flower(transport):
    """`celery flower` on a free port, the API open without auth (FLOWER_UNAUTHENTICATED_API);
    stopped by its PID."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "--broker", transport.broker_url, "flower", f"--port={port}", "--address=127.0.0.1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=clean_env({"FLOWER_UNAUTHENTICATED_API": "true"}),
    )
    log = StreamLog(proc.stdout)

    def api(path: str):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None:
                raise AssertionError(f"flower exited with {proc.returncode}:\n{log.text}")
            return None

    api.log = log
    yield api
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.all_brokers(["redis", "amqp+redis"])
def test_flower_lists_the_host_online_and_its_tasks_with_states_and_runtimes(serve, make_functions, celery_app, flower):
    host = serve(make_functions(), "-n", NODE)
    workers = wait_until(lambda: (flower("/api/workers?refresh=1") or {}).get(NODE), FLOWER_TIMEOUT, "Flower to list the host")
    assert workers["stats"]["pool"]["implementation"] == "fnhost:prefork"
    assert "math.add" in workers["registered"]
    assert {"math.add", "math.slow"} <= {q["name"] for q in workers["active_queues"]}
    wait_until(lambda: (flower("/api/workers?status=1") or {}).get(NODE) is True, FLOWER_TIMEOUT, "Flower to see the host online")
    # Flower turns task events on with enable_events; the host logs when that happens.
    host.wait_for_log(r"task events enabled", FLOWER_TIMEOUT)

    ok = celery_app.send_task("math.add", args=[2, 3], queue="math.add")
    assert ok.get(timeout=RESULT_TIMEOUT) == 5
    bad = celery_app.send_task("math.div", args=[1, 0], queue="math.div")
    with pytest.raises(ZeroDivisionError):
        bad.get(timeout=RESULT_TIMEOUT)

    def seen():
        tasks = flower("/api/tasks") or {}
        return tasks if tasks.get(ok.id, {}).get("state") == "SUCCESS" and tasks.get(bad.id, {}).get("state") == "FAILURE" else None

    tasks = wait_until(seen, FLOWER_TIMEOUT, "Flower to show both tasks settled")
    good = tasks[ok.id]
    assert good["name"] == "math.add" and good["worker"] == NODE and good["args"] == "[2, 3]" and good["result"] == "5"
    assert isinstance(good["runtime"], float) and good["runtime"] >= 0
    assert good["received"] <= good["started"] <= good["succeeded"]
    failed = tasks[bad.id]
    assert failed["worker"] == NODE and failed["exception"] == "ZeroDivisionError('division by zero')"
    info = flower(f"/api/task/info/{ok.id}")
    assert info["state"] == "SUCCESS" and info["worker"] == NODE
