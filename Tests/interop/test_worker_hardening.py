"""Worker process hardening, read from the kernel's own view of the processes (/proc): workers
die with their host, inherit no descriptor but their IPC socket, dump no core, cannot gain
privileges, can be held to a per-task memory limit, and run as the user `--user` names.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from functools import partial
import tempfile
from pathlib import Path

import pytest

from helpers import RESULT_TIMEOUT, Host, wait_until


def proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def is_gone(pid: int) -> bool:
    """Exited: no /proc entry, or a zombie waiting for whoever inherited it."""
    try:
        return proc_status(pid)["State"].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


def worker_pid(app) -> int:
    return int(app.send_task("hardening.pid", queue="hardening.pid").get(timeout=RESULT_TIMEOUT))


def test_worker_processes_die_with_a_killed_host(serve, make_functions, celery_app):
    host = serve(make_functions("hardening"), "-c", "2")
    pid = worker_pid(celery_app)
    assert not is_gone(pid)
    os.kill(host.pid, signal.SIGKILL)  # the host alone, not its process group
    host.proc.wait()
    wait_until(lambda: is_gone(pid), 20, f"worker process {pid} to die with its host")


def test_a_worker_inherits_only_its_ipc_socket_cannot_gain_privileges_and_dumps_no_core(serve, make_functions, celery_app, monkeypatch):
    # The host itself inherits a descriptor without close-on-exec (as from a careless parent or
    # library): its workers must still not get it.
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)
    try:
        with monkeypatch.context() as m:
            m.setattr(subprocess, "Popen", partial(subprocess.Popen, pass_fds=(leak_r,)))
            host = serve(make_functions("hardening"), "-c", "1", "-E")
        assert str(leak_r) in os.listdir(f"/proc/{host.pid}/fd")
        pid = worker_pid(celery_app)
    finally:
        os.close(leak_r)
        os.close(leak_w)
    fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    # 0-2 as the host had them; 3 is the socketpair; nothing else of the host's (its Redis
    # sockets, the inherited pipe) is open in the worker.
    assert set(fds) - {0, 1, 2} == {3}, fds
    assert fds[3].startswith("socket:"), fds
    assert proc_status(pid)["NoNewPrivs"] == "1"
    limits = Path(f"/proc/{pid}/limits").read_text()
    [core] = [line for line in limits.splitlines() if line.startswith("Max core file size")]
    assert core.split()[4:6] == ["0", "0"], core


def test_a_worker_gets_no_broker_or_backend_url_from_the_hosts_environment(serve, make_functions, celery_app, redis_server, redis_dbs):
    admin = redis_server.client(0)
    admin.execute_command("ACL", "SETUSER", "hardening", "on", ">env-s3cret-pw", "~*", "&*", "+@all")
    with_password = lambda url: url.replace("redis://", "redis://hardening:env-s3cret-pw@")  # noqa: E731
    serve(make_functions("hardening"), "-c", "1", urls=False,
          env={"CELERY_BROKER_URL": with_password(redis_dbs.broker_url), "FNHOST_RESULT_BACKEND": with_password(redis_dbs.backend_url)})
    pid = worker_pid(celery_app)
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert b"env-s3cret-pw" not in environ and b"CELERY_BROKER_URL" not in environ and b"FNHOST_RESULT_BACKEND" not in environ


def test_memory_limit_fails_the_task_with_memory_error_and_the_host_serves_on(serve, make_functions, celery_app, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("tasks:\n  hardening.alloc: { memory_limit: 64MB }\n  hardening.hog: { memory_limit: 64MB }\n")
    serve(make_functions("hardening"), "-c", "1", "--config", config)
    send = lambda name, mb: celery_app.send_task(name, args=[mb], queue=name)  # noqa: E731
    assert send("hardening.alloc", 16).get(timeout=RESULT_TIMEOUT) == "ok"
    # A plugin that checks malloc fails its own way.
    with pytest.raises(MemoryError, match="cannot allocate memory"):
        send("hardening.alloc", 512).get(timeout=RESULT_TIMEOUT)
    # A plugin that does not dies of it: the host says MemoryError, names the limit, and serves on.
    with pytest.raises(MemoryError, match="memory_limit of 64MB"):
        send("hardening.hog", 512).get(timeout=RESULT_TIMEOUT)
    assert send("hardening.hog", 16).get(timeout=RESULT_TIMEOUT) == "ok"
    assert send("hardening.alloc", 16).get(timeout=RESULT_TIMEOUT) == "ok"
    # Without a limit the same allocation succeeds.
    assert celery_app.send_task("math.add", args=[1, 2], queue="math.add").get(timeout=RESULT_TIMEOUT) == 3


def test_a_bad_memory_limit_is_refused_with_its_key(fnhost_cli, make_functions, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("tasks:\n  hardening.alloc: { memory_limit: lots }\n")
    out = fnhost_cli("list", "--functions", make_functions("hardening"), "--config", config)
    assert "memory_limit" in out.stdout + out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")  # CI runs as root
def test_user_drops_root_for_the_host_and_its_workers(serve, make_functions, celery_app):
    # A functions directory the unprivileged user can read (pytest's tmp dirs are root-only).
    shared = Path(tempfile.mkdtemp(prefix="fnhost-user-test-"))
    try:
        shared.chmod(0o755)
        functions = shared / "functions"
        shutil.copytree(make_functions("hardening"), functions)
        functions.chmod(0o755)
        for f in functions.iterdir():
            f.chmod(0o644)
        host = serve(functions, "-c", "1", "--user", "nobody")
        assert "running as root" not in host.log
        nobody = Path("/etc/passwd").read_text()
        uid = next(line.split(":")[2] for line in nobody.splitlines() if line.startswith("nobody:"))
        pid = worker_pid(celery_app)
        for p in (host.pid, pid):
            status = proc_status(p)
            assert status["Uid"].split() == [uid] * 4, status["Uid"]
            assert status["Gid"].split()[0] != "0" and "0" not in status["Groups"].split(), status
        assert celery_app.send_task("math.add", args=[2, 2], queue="math.add").get(timeout=RESULT_TIMEOUT) == 4
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_user_that_does_not_exist_is_a_clear_error(fnhost_cli, make_functions):
    out = fnhost_cli("serve", "--functions", make_functions(), "--user", "no-such-user-fnhost")
    assert out.returncode != 0 and "no-such-user-fnhost: no such user" in out.stderr


def test_workers_run_the_small_fnhost_worker_executable(serve, make_functions, celery_app):
    # Each worker process costs memory N times over: it runs fnhost-worker (built next to
    # fnhost by `make build`), which maps neither Foundation, YAML, OpenSSL nor a broker client.
    host = serve(make_functions("hardening"), "-c", "1")
    pid = worker_pid(celery_app)
    exe = os.readlink(f"/proc/{pid}/exe")
    assert os.path.basename(exe) == "fnhost-worker", exe
    assert os.path.dirname(exe) == os.path.dirname(os.readlink(f"/proc/{host.pid}/exe"))
    assert "fnhost-worker is not beside" not in host.log
    mapped = {line.split()[-1].rsplit("/", 1)[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
              if "/" in line}
    assert "libswiftCore.so" in mapped, sorted(mapped)  # the maps were read, and hold the runtime
    unwanted = [name for name in mapped if name.startswith(("libFoundation", "libcrypto", "libssl", "libhiredis", "librabbitmq"))]
    assert unwanted == [], sorted(mapped)


def test_without_fnhost_worker_the_host_says_so_and_still_serves(fnhost_without_worker, make_functions, celery_app, transport):
    # Only `fnhost` built: its workers run `fnhost worker` (the full executable), and the host
    # warns once at start, naming the missing executable and how to build it.
    host = Host(fnhost_without_worker, make_functions("hardening"),
                ["-c", "1", "--broker", transport.broker_url, "--backend", transport.backend_url])
    try:
        host.wait_ready()
        pid = worker_pid(celery_app)
        assert os.readlink(f"/proc/{pid}/exe") == fnhost_without_worker
        assert "fnhost-worker is not beside" in host.log and "swift build --product fnhost-worker" in host.log
    finally:
        host.stop()
