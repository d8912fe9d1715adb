"""Worker processes are recycled (`--max-tasks-per-child`, `--max-memory-per-child`) and scaled to
zero when idle (`--idle-timeout`, `--autoscale MAX,MIN`), always gracefully: never in the middle
of a task, and with the plugin's `fnhost_plugin_fini` run. crash.pid and fini.pid return the pid
of the worker process that ran them."""

import os
import time

from helpers import RESULT_TIMEOUT, clean_env, resident_kb, wait_until


def call(app, name, *args):
    return app.send_task(name, args=list(args), queue=name).get(timeout=RESULT_TIMEOUT)


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_max_tasks_per_child_replaces_the_process_every_n_tasks(serve, make_functions, celery_app):
    host = serve(make_functions("crash", examples=False), "-c", "1", "--max-tasks-per-child", "2")
    pids = [call(celery_app, "crash.pid") for _ in range(5)]
    assert pids[0] == pids[1] and pids[2] == pids[3], pids
    assert len({pids[0], pids[2], pids[4]}) == 3, pids
    assert host.pid not in pids
    for pid in (pids[0], pids[2]):
        host.wait_for_log(rf"recycling worker process {pid} \(libcrash\.so\): it has run 2 tasks \(max_tasks_per_child 2\)", 10)
    assert host.stderr.search(rf"recycling worker process {pids[4]}\b") is None


def mapped_regions(pid: int) -> int:
    with open(f"/proc/{pid}/maps") as f:
        return sum(1 for _ in f)


def test_recycling_does_not_grow_the_host(serve, make_functions, celery_app):
    """What the host keeps per worker process goes when the process does. Two leaks this guards:
    each process's reader thread, left joinable and never joined, kept its stack and guard page
    mapped (two regions per recycle, until vm.max_map_count stopped thread creation and the host
    died); and the retire timer held each exited process, with its 64 KB read buffer, for the
    retire timeout (about 10 MB per 150 recycles here)."""
    host = serve(make_functions("crash", examples=False), "-c", "1", "--max-tasks-per-child", "1")
    for _ in range(20):
        call(celery_app, "crash.pid")
    regions, rss = mapped_regions(host.pid), resident_kb(host.pid)
    pids = {call(celery_app, "crash.pid") for _ in range(150)}
    assert len(pids) == 150  # every task in a new process
    grown = mapped_regions(host.pid) - regions
    assert grown < 40, f"the host maps {grown} more regions after 150 worker processes came and went"
    grown_kb = resident_kb(host.pid) - rss
    assert grown_kb < 4096, f"the host's resident memory grew by {grown_kb} KB over 150 worker processes"


def test_max_memory_per_child_below_any_process_recycles_after_every_task(serve, make_functions, celery_app):
    host = serve(make_functions("crash", examples=False), "-c", "1", "--max-memory-per-child", "1")
    pids = [call(celery_app, "crash.pid") for _ in range(4)]  # .get() raises if any task failed
    assert len(set(pids)) == 4, pids
    for pid in pids:
        host.wait_for_log(rf"recycling worker process {pid} \(libcrash\.so\): its resident memory, \d+ KB, exceeds max_memory_per_child \(1 KB\)", 10)


def test_recycled_process_runs_the_plugin_fini(serve, make_functions, celery_app, tmp_path):
    marker = tmp_path / "fini.log"
    serve(make_functions("fini", examples=False), "-c", "1", "--max-tasks-per-child", "1",
          env=clean_env({"FNHOST_TEST_FINI_FILE": str(marker)}))
    first = call(celery_app, "fini.pid")
    second = call(celery_app, "fini.pid")
    assert first != second
    wait_until(lambda: marker.exists() and str(first) in marker.read_text().split(), 10, "fini to run in the recycled process")


def test_recycling_never_interrupts_a_running_task(serve, make_functions, celery_app):
    host = serve(make_functions(), "-c", "1", "--max-tasks-per-child", "1")
    r = celery_app.send_task("math.slow", args=[1], queue="math.slow")
    out = r.get(timeout=RESULT_TIMEOUT)
    assert r.state == "SUCCESS"
    assert out["end"] - out["start"] >= 0.99
    host.wait_for_log(rf"recycling worker process {out['pid']} \(libmath\.so\)", 10)
    again = call(celery_app, "math.slow", 0)
    assert again["pid"] != out["pid"]


def test_idle_process_is_shut_down_and_the_next_task_starts_a_new_one(serve, make_functions, celery_app):
    host = serve(make_functions("crash", examples=False), "-c", "1", "--idle-timeout", "1")
    pid = call(celery_app, "crash.pid")
    assert is_alive(pid)
    host.wait_for_log(rf"stopping idle worker process {pid} \(libcrash\.so\): idle for [\d.]+s \(idle timeout 1s\)", 10)
    wait_until(lambda: not is_alive(pid), 10, f"idle worker process {pid} to exit")
    again = call(celery_app, "crash.pid")
    assert again != pid and is_alive(again)


def test_idle_timeout_never_stops_a_busy_process(serve, make_functions, celery_app):
    host = serve(make_functions(), "-c", "1", "--idle-timeout", "1")
    r = celery_app.send_task("math.slow", args=[2.5], queue="math.slow")
    out = r.get(timeout=RESULT_TIMEOUT)
    # A stop sent mid-task would still let the task finish (frames are read in order), so the
    # proof is the log: nothing stopped the process while it ran for longer than the timeout.
    assert f"stopping idle worker process {out['pid']} " not in host.stderr.text, host.log
    assert r.state == "SUCCESS" and out["end"] - out["start"] >= 2.4
    host.wait_for_log(rf"stopping idle worker process {out['pid']} ", 10)


def test_autoscale_min_processes_survive_the_idle_timeout(serve, make_functions, celery_app):
    host = serve(make_functions("crash", examples=False), "--autoscale", "2,1", "--idle-timeout", "1")
    host.wait_for_log(r"concurrency 2\b", 5)
    pid = call(celery_app, "crash.pid")
    time.sleep(3)
    assert is_alive(pid)
    assert host.stderr.search(r"stopping idle worker process") is None, host.log


def test_idle_timeout_zero_keeps_processes(serve, make_functions, celery_app):
    host = serve(make_functions("crash", examples=False), "-c", "1", "--idle-timeout", "0")
    pid = call(celery_app, "crash.pid")
    time.sleep(2)
    assert is_alive(pid) and call(celery_app, "crash.pid") == pid
    assert host.stderr.search(r"stopping idle worker process") is None


def test_config_max_tasks_per_child_applies_and_the_flag_beats_it(serve, make_functions, celery_app, tmp_path):
    path = tmp_path / "fnhost.yml"
    path.write_text("worker_max_tasks_per_child: 1\nworker_max_memory_per_child: 0\n")
    functions = make_functions("crash", examples=False)
    host = serve(functions, "-c", "1", "--config", path)
    pids = [call(celery_app, "crash.pid") for _ in range(3)]
    assert len(set(pids)) == 3, pids
    assert "not supported yet" not in host.log
    host.terminate()

    serve(functions, "-c", "1", "--config", path, "--max-tasks-per-child", "3")
    pids = [call(celery_app, "crash.pid") for _ in range(3)]
    assert len(set(pids)) == 1, pids


def test_bad_recycling_settings_are_refused(fnhost_cli, make_functions, tmp_path):
    functions = make_functions("crash", examples=False)
    done = fnhost_cli("serve", "--functions", functions, "--autoscale", "2,5")
    assert done.returncode != 0 and "--autoscale" in done.stderr
    path = tmp_path / "fnhost.yml"
    path.write_text("worker_max_memory_per_child: lots\n")
    done = fnhost_cli("serve", "--functions", functions, "--config", path)
    assert done.returncode != 0 and "worker_max_memory_per_child" in done.stderr
