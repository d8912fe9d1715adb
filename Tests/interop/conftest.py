"""Fixtures of the interop suite: a private redis-server, `fnhost serve` hosts, compiled fixture
plugins, functions directories and a Python Celery 5.7 producer.

Missing prerequisites (redis-server, the fnhost binary, the example plugins) fail the tests
loudly; nothing here skips.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from celery import Celery

from helpers import REPO, Host, clean_env
from rabbitmq import RabbitMQNode, make_certificates

FIXTURE_PLUGINS = REPO / "Tests" / "fixtures" / "plugins"
EXAMPLE_PLUGINS = ("libmath.so", "libtext.so")


# ------------------------------------------------------------------------------------------------
# The binary


@pytest.fixture(scope="session")
def fnhost() -> str:
    """Absolute path of the fnhost binary, from $FNHOST (`make interop-test` sets it)."""
    path = os.environ.get("FNHOST")
    if not path:
        pytest.fail("FNHOST is not set: run `make interop-test`, or export FNHOST=/abs/path/to/fnhost")
    if not os.path.isabs(path) or not os.access(path, os.X_OK) or not os.path.isfile(path):
        pytest.fail(f"FNHOST={path!r} is not an absolute path to an executable file (run `make build`)")
    return path


@pytest.fixture
def fnhost_without_worker(fnhost, tmp_path) -> str:
    """A copy of fnhost in a directory of its own, with no fnhost-worker beside it: what
    `swift build --product fnhost` alone leaves (workers then run `fnhost worker`)."""
    alone = tmp_path / "fnhost-alone" / "fnhost"
    alone.parent.mkdir()
    shutil.copy2(fnhost, alone)
    assert not (alone.parent / "fnhost-worker").exists()
    return str(alone)


@pytest.fixture(scope="session")
def fnhost_cli(fnhost):
    """Runs `fnhost ARGS...` to completion: fnhost_cli("list", "--functions", d) -> CompletedProcess."""

    def run(*args, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [fnhost, *map(str, args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(env),
        )

    return run


# ------------------------------------------------------------------------------------------------
# Redis


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen
    dir: Path

    def client(self, db: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server():
    """A private redis-server on a free loopback port, no persistence; stopped by its PID."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (scripts/install-deps.sh installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="fnhost-interop-redis-"))
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
         "--save", "", "--appendonly", "no", "--databases", "64",
         "--logfile", str(workdir / "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, proc, workdir)
    client = server.client(0)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "redis.log").read_text(errors="replace") if (workdir / "redis.log").exists() else ""
                proc.kill()
                pytest.fail(f"redis-server did not answer on port {port}:\n{log}")
            time.sleep(0.05)
    client.close()
    yield server
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class RedisTLSServer:
    """A private redis-server that speaks only TLS (`--port 0`), asks for a password
    (`requirepass`) and accepts an optional client certificate; `certs` are make_certificates'."""

    port: int
    password: str
    certs: dict
    proc: subprocess.Popen
    dir: Path

    def url(self, db: int, host: str = "localhost", password: str | None = None, query: str = "") -> str:
        pw = self.password if password is None else password
        return f"rediss://:{pw}@{host}:{self.port}/{db}" + (f"?{query}" if query else "")

    def client(self, db: int) -> redis.Redis:
        return redis.Redis(host="localhost", port=self.port, db=db, password=self.password, ssl=True,
                           ssl_ca_certs=str(self.certs["ca"]), ssl_cert_reqs="required")


REDIS_TLS_PASSWORD = "s3cret-redis-Pa55word"


@pytest.fixture(scope="session")
def redis_tls_server():
    """redis-server on a TLS port only, with certificates made here by openssl (a CA, a server
    certificate for localhost/127.0.0.1, a client certificate, an unrelated CA)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (scripts/install-deps.sh installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="fnhost-interop-redis-tls-"))
    certs = make_certificates(workdir)
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(port), "--dir", str(workdir),
         "--tls-cert-file", str(certs["cert"]), "--tls-key-file", str(certs["key"]),
         "--tls-ca-cert-file", str(certs["ca"]), "--tls-auth-clients", "optional",
         "--requirepass", REDIS_TLS_PASSWORD,
         "--save", "", "--appendonly", "no", "--databases", "16", "--logfile", str(workdir / "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = RedisTLSServer(port, REDIS_TLS_PASSWORD, certs, proc, workdir)
    client = server.client(0)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "redis.log").read_text(errors="replace") if (workdir / "redis.log").exists() else ""
                proc.kill()
                pytest.fail(f"redis-server (TLS) did not answer on port {port}:\n{log}")
            time.sleep(0.05)
    client.close()
    yield server
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class RedisDBs:
    """The broker and result-backend databases of one test, and raw clients for both."""

    broker_url: str
    backend_url: str
    broker: redis.Redis
    backend: redis.Redis


_db_pairs = itertools.cycle(range(1, 32))  # pairs (2k, 2k+1) of the 64 databases


@pytest.fixture
def redis_dbs(redis_server):
    """A fresh (flushed) pair of databases: broker 2k, backend 2k+1. Distinct numbers catch a
    host that ignores the URL's database."""
    k = next(_db_pairs)
    broker, backend = redis_server.client(2 * k), redis_server.client(2 * k + 1)
    broker.flushdb()
    backend.flushdb()
    yield RedisDBs(redis_server.url(2 * k), redis_server.url(2 * k + 1), broker, backend)
    broker.close()
    backend.close()


# ------------------------------------------------------------------------------------------------
# RabbitMQ, and the broker/backend pair a test runs against


@pytest.fixture(scope="session")
def rabbitmq_server():
    """One private RabbitMQ node for the whole run (it takes seconds to start), started the first
    time a test needs it; every test gets its own virtual host (`new_vhost()`)."""
    try:
        node = RabbitMQNode()
    except RuntimeError as e:
        pytest.fail(str(e))
    yield node
    node.shutdown()


@dataclass
class Transport:
    """The broker and result backend of one test: `kind` is redis, amqp+rpc or amqp+redis."""

    kind: str
    broker_url: str
    backend_url: str

    @property
    def is_amqp(self) -> bool:
        return self.kind.startswith("amqp")


TRANSPORTS = ("redis", "amqp+rpc", "amqp+redis")


def pytest_generate_tests(metafunc):
    """Tests marked `all_brokers` run on Redis, on RabbitMQ with rpc://, and on RabbitMQ with a
    Redis result backend; the others on Redis (they look at Redis' own keys)."""
    marker = metafunc.definition.get_closest_marker("all_brokers")
    if "transport" in metafunc.fixturenames and marker is not None:
        kinds = marker.args[0] if marker.args else TRANSPORTS
        metafunc.parametrize("transport", kinds, indirect=True)


@pytest.fixture
def transport(request, redis_dbs) -> Transport:
    kind = getattr(request, "param", "redis")
    if kind == "redis":
        return Transport(kind, redis_dbs.broker_url, redis_dbs.backend_url)
    rabbit = request.getfixturevalue("rabbitmq_server")
    broker = rabbit.url(rabbit.new_vhost())
    return Transport(kind, broker, "rpc://" if kind == "amqp+rpc" else redis_dbs.backend_url)


@pytest.fixture
def celery_app(transport):
    """A plain Python Celery 5.7 producer on the test's broker and backend (result_expires left default)."""
    app = Celery("interop", broker=transport.broker_url, backend=transport.backend_url, set_as_current=False)
    yield app
    app.close()


# ------------------------------------------------------------------------------------------------
# Plugins and functions directories


@pytest.fixture(scope="session")
def cflags(fnhost_cli) -> list[str]:
    out = fnhost_cli("cflags")
    if out.returncode != 0:
        pytest.fail(f"`fnhost cflags` failed ({out.returncode}):\n{out.stderr}")
    return out.stdout.split()


@pytest.fixture(scope="session")
def fixture_plugin(cflags, tmp_path_factory):
    """Compiles Tests/fixtures/plugins/NAME.c once per session: fixture_plugin("crash") -> Path."""
    built: dict[str, Path] = {}
    outdir = tmp_path_factory.mktemp("fixture-plugins")
    cc = os.environ.get("CC", "cc")

    def build(name: str) -> Path:
        if name not in built:
            src = FIXTURE_PLUGINS / f"{name}.c"
            if not src.is_file():
                pytest.fail(f"fixture plugin source {src} does not exist")
            out = outdir / f"lib{name}.so"
            cmd = [cc, "-O2", "-Wall", "-Werror", "-shared", "-fPIC", *cflags, "-o", str(out), str(src)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                pytest.fail(f"compiling {src.name} failed:\n$ {' '.join(cmd)}\n{res.stderr}")
            built[name] = out
        return built[name]

    return build


@pytest.fixture(scope="session")
def example_plugins() -> list[Path]:
    """functions/libmath.so and functions/libtext.so, built by `make functions`."""
    paths = [REPO / "functions" / name for name in EXAMPLE_PLUGINS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.fail(f"example plugins missing: {', '.join(missing)} (run `make functions`)")
    return paths


@pytest.fixture
def make_functions(tmp_path, example_plugins, fixture_plugin):
    """Builds a functions directory (mode 0755, files 0644):
    make_functions("crash", "native", examples=True, rename={"dup": "libzz_dup.so"},
                   files={"libbadelf.so": b"..."}) -> Path."""
    counter = itertools.count()

    def make(*fixtures: str, examples: bool = True, rename: dict | None = None, files: dict | None = None) -> Path:
        d = tmp_path / f"functions-{next(counter)}"
        d.mkdir()
        d.chmod(0o755)
        sources = list(example_plugins) if examples else []
        targets = [p.name for p in sources]
        for name in fixtures:
            sources.append(fixture_plugin(name))
            targets.append((rename or {}).get(name, f"lib{name}.so"))
        for src, target in zip(sources, targets):
            shutil.copyfile(src, d / target)
            (d / target).chmod(0o644)
        for target, content in (files or {}).items():
            (d / target).write_bytes(content)
            (d / target).chmod(0o644)
        return d

    return make


# ------------------------------------------------------------------------------------------------
# Hosts


@pytest.fixture
def serve(request, fnhost, transport):
    """Starts `fnhost serve` and waits for "fnhost ready":
    serve(functions_dir, "-c", "2", urls=True, env=None, ready=True) -> Host.
    urls=True passes --broker/--backend for the test's databases. Every host is stopped at
    teardown (SIGTERM, SIGKILL after a timeout) and its log is attached to a failure report."""
    hosts: list[Host] = []
    request.node._fnhost_hosts = hosts

    def start(functions: Path, *args, urls: bool = True, env: dict | None = None, ready: bool = True) -> Host:
        argv = list(args)
        if urls:
            argv += ["--broker", transport.broker_url, "--backend", transport.backend_url]
        host = Host(fnhost, functions, argv, env)
        hosts.append(host)
        return host.wait_ready() if ready else host

    yield start
    for host in hosts:
        host.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    hosts = getattr(item, "_fnhost_hosts", None)
    if hosts and report.failed:
        for i, host in enumerate(hosts):
            report.sections.append((f"fnhost serve #{i} ({report.when})", host.describe()))
