"""Hot reload: a plugin dropped into, replaced in or removed from `functions/` while
`fnhost serve` runs is probed first and served as a new generation of worker processes; a
broken build leaves the old one serving; nothing is lost or run twice because of a reload."""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest
from celery.exceptions import NotRegistered

from conftest import FIXTURE_PLUGINS
from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, wait_until

RELOAD_TIMEOUT = 30  # seconds for a change to be probed and served on a shared, busy machine


@pytest.fixture(scope="session")
def version_build(cflags, tmp_path_factory):
    """Compiles Tests/fixtures/plugins/version.c as version N (or broken), once per variant."""
    outdir = tmp_path_factory.mktemp("version-builds")
    built = {}

    def build(version: int = 1, broken: bool = False):
        key = (version, broken)
        if key not in built:
            out = outdir / (f"libversion-{version}{'-broken' if broken else ''}.so")
            cmd = [os.environ.get("CC", "cc"), "-O2", "-Wall", "-Werror", "-shared", "-fPIC", *cflags,
                   f"-DVERSION={version}", *(["-DBROKEN"] if broken else []), "-o", str(out), str(FIXTURE_PLUGINS / "version.c")]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                pytest.fail(f"compiling version.c failed:\n$ {' '.join(cmd)}\n{res.stderr}")
            built[key] = out
        return built[key]

    return build


def install(src, target, how="rename"):
    """Puts a build into the functions directory: `rename` (write a temporary file, then rename
    over: what build tools and editors do) or `copy` (cp in place: truncate, then write)."""
    if how == "rename":
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(src, tmp)
        tmp.chmod(0o644)
        os.rename(tmp, target)
    else:
        shutil.copyfile(src, target)
        target.chmod(0o644)


def reloads_done(host) -> int:
    return host.stderr.text.count("reload done:")


def wait_for_reloads(host, n: int):
    wait_until(lambda: reloads_done(host) >= n, RELOAD_TIMEOUT, f"{n} reload(s) to finish:\n{host.log}")


@pytest.fixture
def functions(make_functions, version_build):
    d = make_functions()
    install(version_build(1), d / "libversion.so")
    return d


def get(app, name, args=(), queue=None):
    return app.send_task(name, args=list(args), queue=queue or name).get(timeout=RESULT_TIMEOUT)


def test_new_plugin_dropped_in_is_served(serve, make_functions, version_build, celery_app):
    d = make_functions()
    host = serve(d)
    install(version_build(7), d / "libversion.so")
    wait_for_reloads(host, 1)
    assert get(celery_app, "version.get") == 7
    host.wait_for_log(r"reload: libversion\.so generation 1 serves version\.get, version\.record, version\.sleep")
    assert get(celery_app, "math.add", [1, 2]) == 3


@pytest.mark.all_brokers(["amqp+redis"])
def test_new_plugin_with_a_new_queue_is_served_on_rabbitmq(serve, make_functions, version_build, celery_app):
    d = make_functions()
    host = serve(d)
    install(version_build(7), d / "libversion.so")
    wait_for_reloads(host, 1)
    try:
        result = celery_app.send_task("version.get", queue="version.get").get(timeout=10)
    except Exception as e:  # celery's TimeoutError: nothing consumed the new queue
        raise AssertionError(f"version.get was not served: {e!r}")
    assert result == 7


@pytest.mark.all_brokers
@pytest.mark.parametrize("how", ["rename", "copy"])
def test_replaced_plugin_serves_its_new_version_and_the_old_generation_drains(serve, functions, version_build, celery_app, how):
    host = serve(functions)
    assert get(celery_app, "version.get") == 1
    install(version_build(2), functions / "libversion.so", how)
    wait_for_reloads(host, 1)
    assert get(celery_app, "version.get") == 2
    host.wait_for_log(r"reload: libversion\.so generation 2 serves .*; libversion\.so generation 1 drains")
    host.wait_for_log(r"reload: libversion\.so generation 1 has drained")


def test_task_in_flight_during_a_reload_finishes_on_the_old_generation(serve, functions, version_build, celery_app):
    host = serve(functions, "-c", "2", "-l", "debug")
    slow = celery_app.send_task("version.sleep", args=[2], queue="version.sleep")
    host.wait_for_log(rf"task version\.sleep\[{slow.id}\] started")
    install(version_build(3), functions / "libversion.so")
    wait_for_reloads(host, 1)
    assert get(celery_app, "version.get") == 3
    assert slow.get(timeout=RESULT_TIMEOUT) == 1  # started on generation 1, finished there
    host.wait_for_log(r"reload: libversion\.so generation 1 has drained")


@pytest.mark.all_brokers
def test_broken_build_keeps_the_old_generation_serving(serve, functions, version_build, celery_app, fnhost_cli):
    host = serve(functions)
    assert get(celery_app, "version.get") == 1
    install(version_build(9, broken=True), functions / "libversion.so")
    line = host.wait_for_log(r"reload: plugin libversion\.so failed to load: (.*)", RELOAD_TIMEOUT)
    assert "broken build" in line.group(1) and "libversion.so generation 1 keeps serving" in line.group(1), line.string
    assert get(celery_app, "version.get") == 1
    # `fnhost list` loads the directory as it is now, and says why the file there fails.
    out = fnhost_cli("list", "--functions", functions)
    assert re.search(r"^failed: libversion\.so: .*broken build", out.stdout, re.M), out.stdout
    # And what the running host serves: generation 1, with why the newer version is not served.
    assert re.search(rf"^host: fnhost serve \(pid {host.pid}\) serves this directory$", out.stdout, re.M), out.stdout
    assert re.search(r"^host: libversion\.so: generation 1 serving; its latest version failed: .*broken build", out.stdout, re.M), out.stdout
    assert re.search(r"^host: libmath\.so: generation 1 serving$", out.stdout, re.M), out.stdout
    # A fixed build then replaces the old generation.
    install(version_build(4), functions / "libversion.so")
    wait_until(lambda: host.stderr.search(r"reload: libversion\.so generation 3 serves"), RELOAD_TIMEOUT, "the fixed build")
    assert get(celery_app, "version.get") == 4


@pytest.mark.all_brokers(["redis", "amqp+redis"])
def test_removed_plugin_stops_its_queues_after_in_flight_tasks_finish(serve, functions, celery_app):
    host = serve(functions, "-c", "2", "-Q", "celery", "-l", "debug")
    slow = celery_app.send_task("version.sleep", args=[1.5], queue="version.sleep")
    host.wait_for_log(rf"task version\.sleep\[{slow.id}\] started")
    (functions / "libversion.so").unlink()
    wait_for_reloads(host, 1)
    host.wait_for_log(r"reload: libversion\.so was removed")
    assert slow.get(timeout=RESULT_TIMEOUT) == 1
    with pytest.raises(NotRegistered):
        celery_app.send_task("version.get").get(timeout=RESULT_TIMEOUT)  # via the shared queue
    assert "version.get" not in host.stderr.text.split("reload done:")[-1].split("\n")[0]
    assert get(celery_app, "math.add", [2, 2]) == 4


def test_sighup_and_fnhost_reload_reload_what_the_watcher_cannot_see(serve, make_functions, version_build, celery_app, fnhost_cli):
    # A manifest's library in a subdirectory: the watcher watches only the functions directory.
    d = make_functions(examples=False)
    (d / "lib").mkdir(mode=0o755)
    install(version_build(1), d / "lib" / "libversion.so")
    (d / "value.fnhost.yml").write_text('library: lib/libversion.so\ntasks:\n  value.get: { symbol: version_value, signature: "i64()" }\n')
    (d / "value.fnhost.yml").chmod(0o644)
    host = serve(d)
    assert get(celery_app, "value.get") == 1

    install(version_build(5), d / "lib" / "libversion.so")
    out = fnhost_cli("reload", "--functions", d)
    assert out.returncode == 0, out.stderr
    assert re.search(rf"asked fnhost serve \(pid {host.pid}\) to reload", out.stdout), out.stdout
    wait_for_reloads(host, 1)
    assert get(celery_app, "value.get") == 5

    install(version_build(6), d / "lib" / "libversion.so")
    os.kill(host.pid, 1)  # SIGHUP
    wait_for_reloads(host, 2)
    assert get(celery_app, "value.get") == 6


def test_fnhost_reload_without_a_running_host_fails_clearly(make_functions, fnhost_cli):
    out = fnhost_cli("reload", "--functions", make_functions())
    assert out.returncode != 0
    assert "no fnhost serve is running for this functions directory" in out.stderr


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_tasks_keep_flowing_through_ten_reloads_each_run_exactly_once(serve, functions, version_build, celery_app, redis_dbs, tmp_path, pool):
    run_log = tmp_path / "runs.log"
    host = serve(functions, "-c", "2", "-P", pool, env={"FNHOST_TEST_RUN_LOG": str(run_log)})
    sent = []
    stop = threading.Event()

    def produce():
        while not stop.is_set():
            sent.append(celery_app.send_task("version.record", queue="version.record"))
            time.sleep(0.005)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        for i in range(10):
            install(version_build(10 + i), functions / "libversion.so", "rename" if i % 2 else "copy")
            wait_for_reloads(host, i + 1)
            wait_until(lambda: len(sent) >= 20 * (i + 1), RESULT_TIMEOUT, "the producer")
    finally:
        stop.set()
        producer.join()
    results = [r.get(timeout=RESULT_TIMEOUT) for r in sent]
    assert set(results) <= {1, *range(10, 20)}
    assert 19 in results, "tasks sent after the last reload ran on its generation"
    runs = run_log.read_text().split()
    assert len(runs) == len(set(runs)), "a task ran twice"
    assert sorted(runs) == sorted(r.id for r in sent), "a task did not run, or an unknown one did"
    host.wait_for_log(r"reload: libversion\.so generation 11 serves")
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), RESULT_TIMEOUT, "every delivery to be acknowledged")
    assert host.stderr.search(r"gave \d+ deliveries .* back") is None
    assert host.stderr.search(r"redelivered") is None


def test_new_plugin_cannot_take_a_name_another_plugin_serves(serve, make_functions, fixture_plugin, celery_app):
    d = make_functions()
    host = serve(d, "-Q", "celery")
    install(fixture_plugin("dup"), d / "libaa_dup.so")  # sorts before libmath.so, registers math.add too
    line = host.wait_for_log(r"reload: plugin libaa_dup\.so failed to load: (.*)|plugin libaa_dup\.so failed to load: (.*)", RELOAD_TIMEOUT)
    assert "duplicate task name 'math.add', already registered by libmath.so" in line.string, line.string
    assert get(celery_app, "math.add", [2, 3]) == 5
    with pytest.raises(NotRegistered):
        celery_app.send_task("dup.only").get(timeout=RESULT_TIMEOUT)


def test_task_name_moves_between_manifests(serve, make_functions, celery_app):
    d = make_functions(examples=False)

    def manifest(name, tasks):
        body = "".join(f'  {task}: {{ symbol: {symbol}, signature: "f64(f64)", queue: calc }}\n' for task, symbol in tasks)
        tmp = d / f".{name}.tmp"
        tmp.write_text(f"library: libm.so.6\ntasks:\n{body}")
        tmp.chmod(0o644)
        os.rename(tmp, d / name)

    manifest("a.fnhost.yml", [("calc.floor", "floor"), ("calc.ceil", "ceil")])
    manifest("b.fnhost.yml", [("calc.sqrt", "sqrt")])
    host = serve(d)
    assert get(celery_app, "calc.floor", [2.5], queue="calc") == 2.0
    manifest("b.fnhost.yml", [("calc.sqrt", "sqrt"), ("calc.floor", "floor")])
    manifest("a.fnhost.yml", [("calc.ceil", "ceil")])
    wait_until(lambda: host.stderr.search(r"reload: b\.fnhost\.yml generation \d+ serves calc\.sqrt, calc\.floor"), RELOAD_TIMEOUT,
               "calc.floor to move to b.fnhost.yml")
    wait_until(lambda: host.stderr.search(r"reload: a\.fnhost\.yml generation \d+ serves calc\.ceil(;|$)"), RELOAD_TIMEOUT, "a.fnhost.yml without it")
    assert get(celery_app, "calc.floor", [2.5], queue="calc") == 2.0
    assert get(celery_app, "calc.ceil", [2.5], queue="calc") == 3.0
    assert get(celery_app, "calc.sqrt", [4], queue="calc") == 2.0


def test_reload_failures_and_functions_loaded_show_in_metrics(serve, functions, version_build, celery_app):
    import socket
    import urllib.request
    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def sample(name):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        values = [s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
        return values[0] if values else None

    host = serve(functions, "--metrics-port", port)
    loaded = sample("fnhost_functions_loaded")
    assert sample("fnhost_plugin_reload_failures_total") == 0
    install(version_build(9, broken=True), functions / "libversion.so")
    host.wait_for_log(r"reload: plugin libversion\.so failed to load", RELOAD_TIMEOUT)
    assert sample("fnhost_plugin_reload_failures_total") == 1
    (functions / "libversion.so").unlink()
    host.wait_for_log(r"reload: libversion\.so was removed", RELOAD_TIMEOUT)
    wait_until(lambda: sample("fnhost_functions_loaded") == loaded - 3, 10, "the removed plugin's functions to leave the gauge")


# ------------------------------------------------------------------------------------------------
# Private copies: removed once no worker process may start from them, never under a host


def copies_of(state, plugin: str) -> list[str]:
    return sorted(n for n in os.listdir(state / "plugins") if n.endswith(f"-{plugin}"))


def copy_name(build, plugin: str) -> str:
    return f"{hashlib.sha256(build.read_bytes()).hexdigest()}-{plugin}"


def test_old_generations_copies_are_removed_once_drained(serve, functions, version_build, celery_app, tmp_path):
    state = tmp_path / "state"
    host = serve(functions, "--state-dir", state)
    assert copies_of(state, "libversion.so") == [copy_name(version_build(1), "libversion.so")]
    for i, version in enumerate((2, 3, 4)):
        install(version_build(version), functions / "libversion.so")
        wait_for_reloads(host, i + 1)
        assert get(celery_app, "version.get") == version
    wait_until(lambda: copies_of(state, "libversion.so") == [copy_name(version_build(4), "libversion.so")], RELOAD_TIMEOUT,
               f"only the serving generation's copy to be left: {copies_of(state, 'libversion.so')}\n{host.log}")
    host.wait_for_log(r"removed \d+ private plugin copies no worker process uses")
    assert get(celery_app, "version.get") == 4


def test_a_host_never_removes_the_copies_another_host_uses(serve, functions, make_functions, version_build, celery_app, tmp_path):
    state = tmp_path / "state"
    # Every task in a new worker process: each one starts from the private copy again.
    first = serve(functions, "--state-dir", state, "--max-tasks-per-child", "1")
    assert get(celery_app, "version.get") == 1
    # A second host on the same state directory, serving another directory: it collects at
    # start and after each reload, and must leave the first host's copies alone.
    second = serve(make_functions("crash", examples=False), "--state-dir", state, "-l", "debug")
    second.proc.send_signal(signal.SIGHUP)
    second.wait_for_log(r"reload: nothing changed", RELOAD_TIMEOUT)
    assert copies_of(state, "libversion.so") == [copy_name(version_build(1), "libversion.so")]
    assert [get(celery_app, "version.get") for _ in range(3)] == [1, 1, 1]
    # Once the first host has gone, its copies are the second's to remove.
    assert first.terminate() == 0, first.describe()
    second.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: copies_of(state, "libversion.so") == [], RELOAD_TIMEOUT, f"the first host's copies to go\n{second.log}")
    assert len(copies_of(state, "libcrash.so")) == 1
