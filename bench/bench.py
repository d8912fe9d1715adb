#!/usr/bin/env python3
"""fnhost vs a stock Celery 5.7 worker, side by side on one private redis-server and one private
RabbitMQ node, rounds alternated (fnhost, celery, fnhost, celery, ...). Prints one table of medians
per broker; see bench/README.md.

Measures and prints; it asserts nothing about timings.
"""

import argparse, base64, json, os, platform, shutil, signal, socket, statistics  # noqa: E401
import subprocess, sys, tempfile, threading, time, uuid  # noqa: E401
from contextlib import closing
from pathlib import Path
from typing import NamedTuple

import amqp
import celery
import redis
from celery import Celery

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
QUEUE = "math.add"


class Workload(NamedTuple):
    """A task both workers run, from the queue named like it (fnhost's default)."""
    task: str
    args: list
    label: str


NOOP = Workload("math.add", [2, 3], "no-op (math.add)")            # functions/libmath.so, celery_tasks.add
SPIN = Workload("bench.spin", [1000], "1 ms of CPU (bench.spin)")  # bench/plugins/spin.c, celery_tasks.spin
BROKER_DB, BACKEND_DB = 0, 1
STOP_TIMEOUT = 30    # s between SIGTERM and SIGKILL of the worker's process group
PHASE_TIMEOUT = 300  # s for any one wait (first consumption, drain, first result)

# ---- Settings ----------------------------------------------------------------------------------
def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="rounds; the table shows medians (3)")
    p.add_argument("--n-fnhost", type=int, default=20000, help="messages per fnhost drain (20000)")
    p.add_argument("--n-celery", type=int, default=3000, help="messages per Celery drain (3000)")
    p.add_argument("-c", "--concurrency", type=int, default=2, help="worker processes of both (2)")
    p.add_argument("--calls", type=int, default=500, help="timed round trips per round (500)")
    p.add_argument("--warmup", type=int, default=20, help="untimed round trips first (20)")
    p.add_argument("--fnhost", default=str(REPO / ".build/release/fnhost"), help="the fnhost binary")
    p.add_argument("--functions", default=str(REPO / "functions"), help="fnhost's functions directory")
    p.add_argument("--brokers", default="redis,rabbitmq", help="brokers to run on, comma-separated (redis,rabbitmq)")
    p.add_argument("--n-spin", type=int, default=1000, help="1 ms tasks per drain, times the concurrency (1000)")
    p.add_argument("--no-scaling", dest="scaling", action="store_false",
                   help="skip the scaling table (concurrency 1/2/4, the 1 ms task, 1/2/4 fnhost hosts)")
    p.add_argument("--quick", action="store_true",
                   help="the headline ratios in under 2 minutes: 1 round, N 5000/1000, 100 round trips, no scaling")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.n_fnhost, args.n_celery, args.calls, args.scaling = 1, 5000, 1000, 100, False
    args.fnhost, args.functions = os.path.abspath(args.fnhost), os.path.abspath(args.functions)  # workers run in bench/
    return args


def log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def wait_for(predicate, what: str, proc=None, interval=0.005, timeout=PHASE_TIMEOUT):
    """Polls until predicate() is truthy; returns time.perf_counter() when it was seen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"worker exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return time.perf_counter()


# ---- The private redis-server (stopped by its PID) ---------------------------------------------
class RedisServer:
    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = Path(tempfile.mkdtemp(prefix="fnhost-bench-"))
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
             "--save", "", "--appendonly", "no", "--logfile", str(self.dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.broker, self.backend = self.client(BROKER_DB), self.client(BACKEND_DB)
        wait_for(self._ping, "redis-server", self.proc, 0.05, 15)

    def _ping(self):
        try:
            return self.broker.ping()
        except redis.ConnectionError:
            return False

    def client(self, db):
        return redis.Redis(host="127.0.0.1", port=self.port, db=db)

    def url(self, db):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def flush(self):  # both DBs, before every worker start and every fill
        self.broker.flushdb()
        self.backend.flushdb()

    def cpu_seconds(self):  # utime + stime
        fields = proc_stat(self.proc.pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        stop(self.proc, group=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    # The broker interface drain(), round_trips() and start_to_first() use.
    name = "redis"

    @property
    def broker_url(self):
        return self.url(BROKER_DB)

    @property
    def backend_url(self):
        return self.url(BACKEND_DB)

    def fill(self, n, ignore_result, w=NOOP):
        fill(self.broker, n, ignore_result, w)

    def queued(self, w=NOOP):
        return self.broker.llen(w.task)

    def drained(self, n, store, w=NOOP):
        queued, unacked = self.broker.pipeline(transaction=False).llen(w.task).hlen("unacked").execute()
        return queued == 0 and unacked == 0 and (not store or self.backend.dbsize() >= n)

    def results_stored(self):
        return self.backend.dbsize()

    def settled(self, w=NOOP):
        pass

    def ceiling(self, n):
        return broker_ceiling(self, n)

    def version(self):
        return "redis-server " + self.broker.info("server")["redis_version"]


# ---- The private RabbitMQ node (Tests/interop/rabbitmq.py: own epmd, stopped by its PIDs) ------
class RabbitBroker:
    """RabbitMQ as broker; results over rpc:// to one reply queue, `bench.replies`, that every
    task names as its reply_to (what a Celery producer with rpc:// does, one queue per client)."""

    name = "rabbitmq"
    REPLIES = "bench.replies"

    def __init__(self):
        sys.path.insert(0, str(REPO / "Tests" / "interop"))
        from rabbitmq import RabbitMQNode
        self.node = RabbitMQNode()
        self.broker_url = self.node.url("/")
        self.backend_url = "rpc://"
        self.conn = amqp.Connection(host=f"127.0.0.1:{self.node.port}", userid="guest", password="guest")
        self.conn.connect()
        self.ch = self.conn.channel()

    def _count(self, queue):
        return self.ch.queue_declare(queue=queue, durable=True, auto_delete=False, passive=False).message_count

    def flush(self):
        for w in (NOOP, SPIN):
            self.ch.queue_declare(queue=w.task, durable=True, auto_delete=False)
            self.ch.queue_purge(w.task)
        self.ch.queue_declare(queue=self.REPLIES, durable=True, auto_delete=False)
        self.ch.queue_purge(self.REPLIES)

    def fill(self, n, ignore_result, w=NOOP):
        """Publishes n messages as Celery's producer does (pre-encoded once; fresh ids), then waits
        until RabbitMQ has them all."""
        body = json.dumps([w.args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()
        argsrepr = repr(w.args)
        for _ in range(n):
            tid = str(uuid.uuid4())
            headers = {"lang": "py", "task": w.task, "id": tid, "shadow": None, "eta": None, "expires": None, "group": None,
                       "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": tid, "parent_id": None,
                       "argsrepr": argsrepr, "kwargsrepr": "{}", "origin": f"gen{os.getpid()}@{platform.node()}",
                       "ignore_result": True if ignore_result else None, "replaced_task_nesting": 0,
                       "stamped_headers": None, "stamps": {}}
            self.ch.basic_publish(amqp.Message(body, content_type="application/json", content_encoding="utf-8",
                                               application_headers=headers, delivery_mode=2, priority=0,
                                               correlation_id=tid, reply_to=self.REPLIES),
                                  exchange="", routing_key=w.task)
        wait_for(lambda: self._count(w.task) == n, "RabbitMQ to hold every message", interval=0.01)

    def queued(self, w=NOOP):
        return self._count(w.task)

    def results_stored(self):
        return self._count(self.REPLIES)

    def drained(self, n, store, w=NOOP):
        # Ready messages only: at most the prefetch window (concurrency x 4) is still unacknowledged
        # then; settled() waits for those, untimed.
        return self._count(w.task) == 0 and (not store or self._count(self.REPLIES) >= n)

    def settled(self, w=NOOP):
        def unacked():
            out = self.node.ctl("list_queues", "-q", "name", "messages_unacknowledged")
            return all(line.split()[1] == "0" for line in out.splitlines() if line.split()[:1] == [w.task])
        wait_for(unacked, "every delivery to be acknowledged", interval=0.2)

    def ceiling(self, n, window=256):
        """Messages/s at which RabbitMQ alone delivers and takes acknowledgements for the filled
        queue: a py-amqp consumer with prefetch `window`, acknowledging with `multiple` every 64."""
        self.flush()
        self.fill(n, ignore_result=True)
        ch = self.conn.channel()
        ch.basic_qos(0, window, False)
        got = [0]

        def on_message(m):
            got[0] += 1
            if got[0] % 64 == 0 or got[0] == n:
                ch.basic_ack(m.delivery_tag, multiple=True)
        cpu0, t0 = self.cpu_seconds(), time.perf_counter()
        tag = ch.basic_consume(QUEUE, callback=on_message)
        while got[0] < n:
            self.conn.drain_events(timeout=PHASE_TIMEOUT)
        elapsed = time.perf_counter() - t0
        ch.basic_cancel(tag)
        ch.close()
        return n / elapsed, (self.cpu_seconds() - cpu0) / elapsed

    def cpu_seconds(self):
        """utime + stime of the node's beam.smp (in the process group the node was started in)."""
        total = 0.0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                f = proc_stat(pid)
                if int(f[2]) == self.node.proc.pid and Path(f"/proc/{pid}/comm").read_text().strip() == "beam.smp":
                    total += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
            except OSError:
                pass
        return total

    def version(self):
        return "rabbitmq-server " + self.conn.server_properties.get("version", "?")

    def stop(self):
        try:
            self.conn.close()
        except Exception:
            pass
        self.node.shutdown()


# ---- Workers: spawned in their own session, stopped by PID, measured through /proc -------------
def spawn(kind: str, args, rs, logfile: Path, functions=None, concurrency=None, queues=(QUEUE,)) -> subprocess.Popen:
    """fnhost serves every function in `functions` (default: the bench's math-only directory);
    Celery consumes `queues`."""
    broker, backend, c = rs.broker_url, rs.backend_url, str(concurrency or args.concurrency)
    if kind == "fnhost":
        argv = [args.fnhost, "serve", "--functions", str(functions or args.dirs["math"]), "-c", c,
                "--broker", broker, "--backend", backend, "-l", "warning"]
    else:
        argv = [sys.executable, "-m", "celery", "-A", "celery_tasks", "-b", broker, "--result-backend", backend,
                "worker", "-P", "prefork", "-c", c, "-Q", ",".join(queues), "-l", "warning",
                "--without-heartbeat", "--without-gossip", "--without-mingle"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "FNHOST_"))}
    with open(logfile, "ab") as out:  # cwd bench/: no stray ./fnhost.yml, celery_tasks importable
        return subprocess.Popen(argv, cwd=BENCH, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)

def stop(proc: subprocess.Popen, group=True):
    """SIGTERM to the PID; after STOP_TIMEOUT, SIGKILL to its process group (a worker) or itself."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:  # still unreaped, so the group id is still ours
        os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        proc.wait()


def proc_stat(pid) -> list[str]:
    """/proc/PID/stat fields from the state on (field 3 of proc(5) is [0])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants, found by walking /proc."""
    children: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            children.setdefault(int(proc_stat(pid)[1]), []).append(int(pid))
        except OSError:
            continue  # gone meanwhile
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return pids


def tree_memory_kb(root: int) -> tuple[int, int]:
    """(VmRSS, Pss) of `root` and all its descendants. RSS counts every shared page (the language
    runtime, shared libraries, pages shared after fork) once per process; PSS divides each page
    among the processes that map it, so it sums to what the tree costs."""
    rss = pss = 0
    for pid in tree_pids(root):
        try:
            rss += sum(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:"))
            pss += sum(int(line.split()[1]) for line in open(f"/proc/{pid}/smaps_rollup") if line.startswith("Pss:"))
        except OSError:
            pass
    return rss, pss


def tree_cpu_and_switches(root: int) -> tuple[float, int]:
    """CPU seconds (user + system, all threads) used so far by `root` and its descendants, and the
    voluntary context switches of all their threads: each is a thread going to sleep to wait (for
    a socket, a lock, a child), so per round trip it counts the hand-offs on the task's path."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu, switches = 0.0, 0
    for pid in tree_pids(root):
        try:
            f = proc_stat(pid)
            cpu += (int(f[11]) + int(f[12])) / tick
            for tid in os.listdir(f"/proc/{pid}/task"):
                for line in open(f"/proc/{pid}/task/{tid}/status"):
                    if line.startswith("voluntary_ctxt_switches:"):
                        switches += int(line.split()[1])
        except OSError:
            pass
    return cpu, switches


def sample_memory(pid: int):
    """Samples the tree memory of `pid` every 50 ms in a thread; returns stop(), which gives the
    peaks (RSS kB, PSS kB)."""
    peak, done = [0, 0], threading.Event()

    def run():
        while not done.is_set():
            rss, pss = tree_memory_kb(pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            done.wait(0.05)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return lambda: (done.set(), thread.join(), tuple(peak))[-1]



# ---- Envelopes, exactly as Celery 5.7's producer writes them for send_task("math.add", args=[2, 3], ----
# queue="math.add") (see /work/shared/fixtures/celery-5.7/redis_task_message.raw.json)
def envelope_template(ignore_result: bool, w=NOOP) -> str:
    body = json.dumps([w.args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    env = {
        "body": base64.b64encode(body.encode()).decode(), "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": w.task, "id": "@ID@", "shadow": None, "eta": None, "expires": None,
                    "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
                    "root_id": "@ID@", "parent_id": None, "argsrepr": repr(w.args), "kwargsrepr": "{}",
                    "origin": f"gen{os.getpid()}@{platform.node()}", "ignore_result": True if ignore_result else None,
                    "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}},
        "properties": {"correlation_id": "@ID@", "reply_to": str(uuid.uuid4()), "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": w.task}, "priority": 0,
                       "body_encoding": "base64", "delivery_tag": "@TAG@"},
    }
    return json.dumps(env)


def fill(client: redis.Redis, n: int, ignore_result: bool, w=NOOP, chunk=1000):
    """LPUSHes n envelopes, each with a fresh task id and delivery tag, pipelined in chunks."""
    tpl = envelope_template(ignore_result, w)
    for start in range(0, n, chunk):
        msgs = [tpl.replace("@ID@", str(uuid.uuid4())).replace("@TAG@", str(uuid.uuid4()))
                for _ in range(min(chunk, n - start))]
        client.lpush(w.task, *msgs)  # one LPUSH per chunk: FIFO order preserved, one round trip
    assert client.llen(w.task) == n


# ---- Measurements ------------------------------------------------------------------------------
def drain(kind, args, rs, n, store: bool, logfile, w=NOOP, hosts=1, concurrency=None):
    """Tasks/s from the first consumption to an empty queue with nothing unacknowledged (and, when
    results are stored, all n results), with `hosts` workers started together. With store, also
    the peak tree memory (one worker); returns (rate, (rss_kb, pss_kb) or None, procs)."""
    rs.flush()
    rs.fill(n, ignore_result=not store, w=w)
    functions = args.dirs["math" if w == NOOP else "spin"]
    procs = [spawn(kind, args, rs, logfile, functions=functions, concurrency=concurrency, queues=(w.task,))
             for _ in range(hosts)]
    try:
        stop_sampling = sample_memory(procs[0].pid) if store else None
        t0 = wait_for(lambda: rs.queued(w) < n, f"{kind} to consume", procs[0], interval=0.002)
        t1 = wait_for(lambda: rs.drained(n, store, w), f"{kind} to drain {n} messages", procs[0])
        rs.settled(w)
    except BaseException:
        for proc in procs:
            stop(proc)
        raise
    memory = stop_sampling() if store else None
    if not store and rs.results_stored():
        log(f"  note: {kind} stored {rs.results_stored()} results though ignore_result was set")
    return n / (t1 - t0), memory, procs


def producer(rs):
    """A plain Celery 5.7 producer (a fresh one each time: flushing the DB drops the queue bindings
    an older producer believes it declared)."""
    return closing(Celery("bench-producer", broker=rs.broker_url, backend=rs.backend_url, set_as_current=False))


def round_trips(rs, calls: int, warmup: int, worker: int):
    """p50 and p99 in ms of send_task(...).get() against a running worker (pid `worker`), and the
    worker tree's CPU (µs) and voluntary context switches per timed round trip."""
    times = []
    with producer(rs) as app:
        for i in range(warmup + calls):
            if i == warmup:
                cpu0, switches0 = tree_cpu_and_switches(worker)
            t = time.perf_counter()
            app.send_task(QUEUE, args=[2, 3], queue=QUEUE).get(timeout=60)
            times.append((time.perf_counter() - t) * 1000)
    cpu1, switches1 = tree_cpu_and_switches(worker)
    times = sorted(times[warmup:])
    return (times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))],
            (cpu1 - cpu0) * 1e6 / calls, (switches1 - switches0) / calls)


def start_to_first(kind, args, rs, logfile):
    """ms from spawning the worker to the result of a task sent just before."""
    rs.flush()
    with producer(rs) as app:
        result = app.send_task(QUEUE, args=[2, 3], queue=QUEUE)
        t0 = time.perf_counter()
        proc = spawn(kind, args, rs, logfile)
        try:
            result.get(timeout=PHASE_TIMEOUT)
            return (time.perf_counter() - t0) * 1000
        finally:
            stop(proc)


def landing_to_first(kind, args, rs, logfile):
    """ms from new code landing to the first result of its task, with the worker already running
    and the task already queued. fnhost: libspin.so is renamed into the running host's functions/
    (its hot reload starts new worker processes). Celery cannot load code into a running worker:
    its figure is the restart that deploys it (warm stop, start with the new task, first result)."""
    rs.flush()
    landing = Path(tempfile.mkdtemp(prefix="fnhost-bench-landing-"))
    os.chmod(landing, 0o755)
    shutil.copy2(args.dirs["math"] / "libmath.so", landing / "libmath.so")
    proc = spawn(kind, args, rs, logfile, functions=landing)
    try:
        with producer(rs) as app:
            app.send_task(QUEUE, args=[2, 3], queue=QUEUE).get(timeout=PHASE_TIMEOUT)  # running and serving
            result = app.send_task(SPIN.task, args=[1], queue=SPIN.task)
            if kind == "fnhost":
                shutil.copy2(args.dirs["spin"] / "libspin.so", landing / ".libspin.so.tmp")
                t0 = time.perf_counter()
                os.rename(landing / ".libspin.so.tmp", landing / "libspin.so")
            else:
                t0 = time.perf_counter()
                stop(proc)
                proc = spawn(kind, args, rs, logfile, queues=(QUEUE, SPIN.task))
            result.get(timeout=PHASE_TIMEOUT)
            return (time.perf_counter() - t0) * 1000
    finally:
        stop(proc)
        shutil.rmtree(landing, ignore_errors=True)


def broker_ceiling(rs, n, batch=256):
    """Messages/s at which Redis alone runs one task's commands (RPOP; ZADD unacked_index + HSET
    unacked; ZREM + HDEL), pipelined `batch` messages deep with redis-py; also redis-server's CPU
    share of one core over that time (near 100%: Redis is the limit; lower: the Python client is)."""
    rs.flush()
    fill(rs.broker, n, ignore_result=True)
    r = rs.client(BROKER_DB)
    cpu0, t0 = rs.cpu_seconds(), time.perf_counter()
    while True:
        p = r.pipeline(transaction=False)
        for _ in range(batch):
            p.rpop(QUEUE)
        msgs = [m for m in p.execute() if m is not None]
        if not msgs:
            break
        tags = [m[-39:-3] for m in msgs]  # the envelope ends with "delivery_tag": "<uuid>"}}
        now = time.time()
        p = r.pipeline(transaction=False)
        for tag, m in zip(tags, msgs):
            p.zadd("unacked_index", {tag: now}).hset("unacked", tag, b"[" + m + b', "", "' + QUEUE.encode() + b'"]')
        p.execute()
        p = r.pipeline(transaction=False)
        for tag in tags:
            p.zrem("unacked_index", tag).hdel("unacked", tag)
        p.execute()
    elapsed = time.perf_counter() - t0
    assert r.hlen("unacked") == 0 and r.zcard("unacked_index") == 0, "ceiling: a tag was misread"
    return n / elapsed, (rs.cpu_seconds() - cpu0) / elapsed



def measure_worker(kind, args, rs, logfile):
    n = args.n_fnhost if kind == "fnhost" else args.n_celery
    m = {}
    m["drain_ignored"], _, procs = drain(kind, args, rs, n, False, logfile)
    stop(procs[0])
    m["drain_stored"], (rss, pss), procs = drain(kind, args, rs, n, True, logfile)
    m["rss_mb"], m["pss_mb"] = rss / 1024, pss / 1024
    try:
        m["rtt_p50"], m["rtt_p99"], m["rtt_cpu_us"], m["rtt_switches"] = round_trips(rs, args.calls, args.warmup, procs[0].pid)
    finally:
        stop(procs[0])
    m["start_ms"] = start_to_first(kind, args, rs, logfile)
    m["landing_ms"] = landing_to_first(kind, args, rs, logfile)
    return m


def measure_scaling(kind, args, rs, logfile):
    """Drain rates (results ignored) at concurrency 1, 2 and 4 for the no-op and the 1 ms task;
    for fnhost also 1, 2 and 4 hosts (at --concurrency each) on the one broker."""
    m = {}
    for c in SCALING:
        for w in (NOOP, SPIN):
            n = (args.n_fnhost if kind == "fnhost" else args.n_celery) if w == NOOP else args.n_spin * c
            m[(w.task, c)], _, procs = drain(kind, args, rs, n, False, logfile, w=w, concurrency=c)
            stop(procs[0])
    if kind == "fnhost":
        for hosts in SCALING:
            m[("hosts", hosts)], _, procs = drain(kind, args, rs, args.n_fnhost * hosts, False, logfile, hosts=hosts)
            for proc in procs:
                stop(proc)
    return m


# ---- Rounds and the table ----------------------------------------------------------------------

ROWS = [  # key, label, format
    ("drain_ignored", "drain, results ignored (tasks/s)", "{:,.0f}"),
    ("drain_stored", "drain, results stored (tasks/s)", "{:,.0f}"),
    ("rtt_p50", "round trip p50 (ms)", "{:.2f}"),
    ("rtt_p99", "round trip p99 (ms)", "{:.2f}"),
    ("rtt_cpu_us", "worker CPU per round trip (µs)", "{:,.0f}"),
    ("rtt_switches", "context switches per round trip", "{:.1f}"),
    ("rss_mb", "peak RSS, worker + children (MB)", "{:.1f}"),
    ("pss_mb", "peak PSS, worker + children (MB)", "{:.1f}"),
    ("start_ms", "start to first task done (ms)", "{:.0f}"),
    ("landing_ms", "new plugin to its first task done (ms)", "{:.0f}"),
    ("share", "drain ignored / broker ceiling", "{:.1%}"),
]
SCALING = (1, 2, 4)


def run_broker(b, args, logs):
    """Every round on broker `b`; returns (results, scaling, ceilings, broker CPU shares)."""
    results = {"fnhost": [], "celery": []}
    scaling = {"fnhost": [], "celery": []}
    ceilings, cpu = [], []
    for i in range(1, args.rounds + 1):
        ceiling, share = b.ceiling(args.n_fnhost)
        ceilings.append(ceiling), cpu.append(share)
        log(f"{b.name} round {i}/{args.rounds}: broker ceiling {ceiling:,.0f} msg/s (broker CPU {share:.0%})")
        for kind in ("fnhost", "celery"):
            m = measure_worker(kind, args, b, logs / f"{b.name}-{kind}.log")
            m["share"] = m["drain_ignored"] / ceiling
            results[kind].append(m)
            log(f"  {kind}: " + ", ".join(f"{k} {v:,.2f}" for k, v in m.items()))
        if args.scaling:
            for kind in ("fnhost", "celery"):
                m = measure_scaling(kind, args, b, logs / f"{b.name}-{kind}.log")
                scaling[kind].append(m)
                log(f"  {kind} scaling: " + ", ".join(f"{k[0]}@{k[1]} {v:,.0f}" for k, v in m.items()))
    return results, scaling, ceilings, cpu


def print_rows(table):
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    table.insert(1, tuple("-" * w for w in widths))
    print()
    for row in table:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))


def print_table(b, version, args, results, scaling, ceilings, cpu):
    med = {k: {key: statistics.median(m[key] for m in ms) for key, _, _ in ROWS} for k, ms in results.items()}
    table = [(f"{b.name}: metric", "fnhost", "celery", "fnhost/celery")]
    for key, label, fmt in ROWS:
        f, c = med["fnhost"][key], med["celery"][key]
        table.append((label, fmt.format(f), fmt.format(c), f"{f / c:.2f}x" if c else "-"))
    ceiling = statistics.median(ceilings)
    table.append(("broker ceiling (msg/s)", f"{ceiling:,.0f}", "", ""))
    print_rows(table)
    backend = "rpc:// (one reply queue)" if b.name == "rabbitmq" else "redis"
    print(f"\nmedians of {args.rounds} rounds, alternated fnhost/celery; nproc {os.cpu_count()}, {version}, "
          f"results {backend}, celery {celery.__version__}, python {platform.python_version()}")
    print(f"N: fnhost {args.n_fnhost}, celery {args.n_celery}, ceiling {args.n_fnhost}; concurrency "
          f"{args.concurrency}; round trips {args.calls} after {args.warmup} warm-up; broker CPU during the "
          f"ceiling {statistics.median(cpu):.0%} of one core (below 100%: the ceiling is client-bound; "
          f"broker-bound estimate {statistics.median(c / u for c, u in zip(ceilings, cpu) if u):,.0f} msg/s)")
    if not scaling["fnhost"]:
        return
    sm = {k: {key: statistics.median(m[key] for m in ms) for key in ms[0]} for k, ms in scaling.items()}
    table = [(f"{b.name} scaling: drain, results ignored (tasks/s)", "fnhost", "celery", "fnhost/celery")]
    for w in (NOOP, SPIN):
        for c in SCALING:
            f, cel = sm["fnhost"][(w.task, c)], sm["celery"][(w.task, c)]
            table.append((f"{w.label}, concurrency {c}", f"{f:,.0f}", f"{cel:,.0f}", f"{f / cel:.2f}x"))
    for hosts in SCALING:
        f = sm["fnhost"][("hosts", hosts)]
        table.append((f"no-op, {hosts} fnhost host(s) x concurrency {args.concurrency}", f"{f:,.0f}", "",
                      f"{f / ceiling:.0%} of ceiling"))
    print_rows(table)
    print(f"\nN per drain: no-op fnhost {args.n_fnhost} (x hosts), celery {args.n_celery}; 1 ms task "
          f"{args.n_spin} x concurrency for both")


def build_dirs(args) -> dict:
    """Private functions directories: math (libmath.so only, the same one task Celery has) and spin
    (bench/plugins/spin.c compiled with `fnhost cflags`)."""
    root = Path(tempfile.mkdtemp(prefix="fnhost-bench-functions-"))
    dirs = {"math": root / "math", "spin": root / "spin"}
    for d in dirs.values():
        d.mkdir(mode=0o755)
        os.chmod(d, 0o755)
    shutil.copy2(Path(args.functions) / "libmath.so", dirs["math"] / "libmath.so")
    cflags = subprocess.run([args.fnhost, "cflags"], check=True, capture_output=True, text=True).stdout.split()
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-Wall", "-Werror", "-shared", "-fPIC", *cflags,
                    "-o", str(dirs["spin"] / "libspin.so"), str(BENCH / "plugins" / "spin.c")], check=True)
    return dirs


def main():
    args = parse_args()
    if not os.access(args.fnhost, os.X_OK):
        sys.exit(f"{args.fnhost} is not executable: swift build -c release --product fnhost")
    if not os.access(Path(args.fnhost).parent / "fnhost-worker", os.X_OK):  # else workers run `fnhost worker`
        sys.exit(f"fnhost-worker is missing next to {args.fnhost}: swift build -c release --product fnhost-worker")
    if not (Path(args.functions) / "libmath.so").is_file():
        sys.exit(f"{args.functions}/libmath.so is missing: make functions")
    kinds = [k.strip() for k in args.brokers.split(",") if k.strip()]
    unknown = set(kinds) - {"redis", "rabbitmq"}
    if unknown:
        sys.exit(f"unknown broker(s) {', '.join(sorted(unknown))}: use redis, rabbitmq")
    args.dirs = build_dirs(args)
    logs = Path(tempfile.mkdtemp(prefix="fnhost-bench-logs-"))
    tables = []
    try:
        for kind in kinds:
            b = RedisServer() if kind == "redis" else RabbitBroker()
            try:
                outcome = run_broker(b, args, logs)
                tables.append((b, b.version(), *outcome))
            except Exception:
                log(f"worker logs: {logs}")
                raise
            finally:
                b.stop()
    finally:
        shutil.rmtree(args.dirs["math"].parent, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)
    for t in tables:
        print_table(t[0], t[1], args, *t[2:])


if __name__ == "__main__":
    main()
