"""A private RabbitMQ node for the interop suite: started once per run on free loopback ports
(AMQP, AMQPS with certificates generated here by openssl, Erlang distribution, its own epmd),
with a pool of virtual hosts so each test gets an empty broker. Stopped by the PIDs started here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT = 60  # seconds; a node takes several to boot, more on a loaded machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost and 127.0.0.1 signed by it, a client certificate
    signed by it, and an unrelated CA (for the wrong-CA test); returns their paths."""
    d = directory
    def run(*args):
        res = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed:\n{res.stderr}")
    for ca in ("ca", "otherca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=fnhost test {ca}",
            "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.ext", "-out", "server.pem")
    # A client certificate signed by the same CA, for mutual TLS (Redis' --tls-auth-clients).
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=fnhost test client", "-keyout", "client.key", "-out", "client.csr")
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-out", "client.pem")
    for name in ("server.key", "ca.key", "otherca.key", "client.key"):
        (d / name).chmod(0o600)
    return {"ca": d / "ca.pem", "otherca": d / "otherca.pem", "cert": d / "server.pem", "key": d / "server.key",
            "client_cert": d / "client.pem", "client_key": d / "client.key"}


class RabbitMQNode:
    """One rabbitmq-server node on loopback, in a private directory."""

    def __init__(self):
        if not (RABBIT_BIN / "rabbitmq-server").exists():
            raise RuntimeError("rabbitmq-server is not installed (scripts/install-deps.sh installs it)")
        self.dir = Path(tempfile.mkdtemp(prefix="fnhost-interop-rabbitmq-"))
        self.port = free_port()
        self.tls_port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.nodename = f"fnhost{self.port}@localhost"
        self.certs = make_certificates(self.dir)
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            f"listeners.ssl.1 = 127.0.0.1:{self.tls_port}\n"
            f"ssl_options.cacertfile = {self.certs['ca']}\n"
            f"ssl_options.certfile = {self.certs['cert']}\n"
            f"ssl_options.keyfile = {self.certs['key']}\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
            "loopback_users = none\n"
            # Tests hold deliveries unacknowledged on purpose; keep the default 30 min timeout out of the way.
            "consumer_timeout = 3600000\n"
        )
        self.env = {
            **os.environ,
            "HOME": str(self.dir),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_BASE": str(self.dir),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.epmd = subprocess.Popen(
            [shutil.which("epmd") or "/usr/lib/erlang/erts-13.1.5/bin/epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.proc: subprocess.Popen | None = None
        self._vhosts: list[str] = []
        self._vhost_counter = 0
        self.start()

    def start(self):
        """Starts the node (again, after `stop`) and waits until it accepts connections."""
        log = open(self.dir / "server.out", "ab")
        self.proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not _port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = (self.dir / "server.out").read_text(errors="replace")[-4000:]
                self.stop()
                raise RuntimeError(f"rabbitmq-server did not listen on {self.port} within {START_TIMEOUT} s:\n{out}")
            time.sleep(0.1)

    def stop(self):
        """Stops the node: SIGTERM to the process group started here, SIGKILL after 30 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # beam's helpers (erl_child_setup, inet_gethost) leave with it; wait for the port to close.
        deadline = time.monotonic() + 15
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def shutdown(self):
        self.stop()
        if self.epmd.poll() is None:
            self.epmd.terminate()
            try:
                self.epmd.wait(10)
            except subprocess.TimeoutExpired:
                self.epmd.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        res = subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.nodename, *args], env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
        return res.stdout

    def new_vhost(self) -> str:
        """An unused virtual host (made 20 at a time: one rabbitmqctl call each batch)."""
        if not self._vhosts:
            first = self._vhost_counter + 1
            self._vhost_counter += 20
            self.ctl("eval", (
                "lists:foreach(fun(N) -> V = list_to_binary(\"fnhost-t\" ++ integer_to_list(N)), "
                "rabbit_vhost:add(V, <<\"fnhost-tests\">>), "
                "rabbit_auth_backend_internal:set_permissions(<<\"guest\">>, V, <<\".*\">>, <<\".*\">>, <<\".*\">>, <<\"fnhost-tests\">>) "
                f"end, lists:seq({first}, {self._vhost_counter})), ok."))
            self._vhosts = [f"fnhost-t{n}" for n in range(first, self._vhost_counter + 1)]
        return self._vhosts.pop(0)

    def url(self, vhost: str = "/", scheme: str = "amqp", host: str = "127.0.0.1") -> str:
        port = self.tls_port if scheme == "amqps" else self.port
        path = "/" if vhost == "/" else "/" + vhost
        return f"{scheme}://guest:guest@{host}:{port}{path}"
