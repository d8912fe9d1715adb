"""Writes the seed corpora of the fuzz targets (Fuzz/Seeds/<Target>/) from the golden Celery
5.7 captures in Tests/CeleryProtocolTests/Fixtures and a few hand-made inputs. Run it again
after adding fixtures: python3 Fuzz/Seeds/make_seeds.py"""

import base64
import hashlib
import json
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parents[1] / "Tests" / "CeleryProtocolTests" / "Fixtures"


def write(target: str, data: bytes):
    d = HERE / target
    d.mkdir(exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


envelopes = []
for path in sorted(FIXTURES.glob("*.raw.json*")):
    for line in path.read_bytes().splitlines():
        if line.strip().startswith(b'{"body"'):
            envelopes.append(line.strip())

for raw in envelopes:
    env = json.loads(raw)
    body = base64.b64decode(env["body"])
    write("FuzzRedisEnvelope", raw)
    write("FuzzTaskMessage", json.dumps(env["headers"]).encode())
    write("FuzzTaskMessage", body)
    try:
        embed = json.loads(body)[2]
    except (ValueError, IndexError, KeyError, TypeError):
        continue  # a body that is not Celery's JSON (signed with the auth serializer, ...)
    write("FuzzCanvasSignature", body)
    for key in ("callbacks", "errbacks", "chain"):
        for sig in embed.get(key) or []:
            write("FuzzCanvasSignature", json.dumps(sig).encode())
    if embed.get("chord"):
        write("FuzzCanvasSignature", json.dumps(embed["chord"]).encode())

for manifest in [
    b'library: libm.so.6\ntasks:\n  math.hypot: { symbol: hypot, signature: "f64(f64,f64)", queue: math }\n  math.floor: { symbol: floor, signature: "f64(f64)" }\n',
    b"library: ./libfast.so\ntasks:\n  fast.sum:\n    symbol: fast_sum\n    signature: \"i64(ptr,u64)\"\n    concurrency: 4\n    time_limit: 2.5\n    acks_late: true\n",
    b"library: libz.so.1\ntasks:\n  z.crc: { symbol: crc32, signature: \"u64(u64,str,u32)\", rate_limit: 10/s, max_retries: 3 }\n",
    # The rest of the YAML the reader takes (FnHostYAML): documents, comments, block scalars,
    # quoting and escapes, sequences, flow collections over lines, YAML 1.1 scalars.
    b"---\n# a comment\nlibrary: 'lib''s.so'   # trailing\ntasks: {\n  a.b: { symbol: f, signature: \"void()\",\n         queue: q },\n}\n...\n",
    b"library: \"lib\\x41\\u00e9\\ttab.so\"\ntasks:\n  t.x:\n    symbol: x\n    signature: >-\n      f64(\n      f64)\n    time_limit: 1:30\n    acks_late: yes\n    rate_limit: |\n      10/m\n",
    b"library: libm.so.6\ntasks:\n  s:\n  - a\n  - [b, {c: d}]\n  -\n    e: 0x1F\n    f: .inf\n    g: ~\n",
    b"library: &a libm.so.6\ntasks: *a\n",
]:
    write("FuzzPluginManifest", manifest)


def frame(kind: int, *fields: bytes) -> bytes:
    payload = bytes([kind]) + b"".join(struct.pack("<I", len(f)) + f for f in fields)
    return struct.pack("<I", len(payload)) + payload


body = base64.b64decode(json.loads(envelopes[0])["body"]) if envelopes else b"[[2, 3], {}, {}]"
for f in [
    frame(1, b"id-1", b"math.add", b"0", b"", body),
    frame(1, b"id-2", b"math.add", b"3", b"2.5", b"[[1], {}, {}]"),
    frame(2),
    frame(10, b'{"tasks": [{"name": "math.add"}]}'),
    frame(11, b"dlopen failed"),
    frame(12, b"id-1", b"success", b"5"),
    frame(12, b"id-1", b"failure", b"ValueError", b"builtins", b"bad", b"Traceback"),
    frame(12, b"id-1", b"retry", b"1.5", b"again"),
    frame(12, b"id-1", b"rejected", b"content", b"pickle"),
    frame(12, b"id-1", b"workerLost", b"signal 9"),
    frame(12, b"id-1", b"timeLimit", b"30"),
]:
    write("FuzzFrame", f)
write("FuzzFrame", frame(1, b"a", b"b", b"0", b"", b"[]") + frame(2))
