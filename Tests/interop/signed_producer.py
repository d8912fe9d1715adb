"""A Celery 5.7 producer with message signing, run in a process of its own by
test_message_signing.py: `app.setup_security()` changes kombu's serializer registry for the
whole process (the default serializer, disabled content types), so it must not run inside the
test process.

    python signed_producer.py '{"broker": ..., "backend": ..., "key": ..., "cert": ...,
                                "store": ..., "tasks": [["math.add", [2, 3]], ["math.div", [1, 0], "<task id>"]],
                                "chain": false,
                                "tamper": false, "wait": true}'

prints a JSON list, one entry per task: {"id", "result"} or {"id", "error", "message"}; with
`"inspect": ["ping", "conf"]` (and no tasks), one entry {"<method>": <replies by node>} instead,
asked through the app's (signed) remote control.
`tamper` swaps the signed body's args after signing (a man in the middle); `chain` sends the
tasks as one chain instead, `chord` as a chord whose body is the last one (its entry also has
the header's "parts" ids); `"get": [ids]` only waits for those results.
"""

import base64
import json
import sys

from celery import Celery, chain, chord
from kombu.serialization import registry


def main():
    spec = json.loads(sys.argv[1])
    app = Celery("signed", broker=spec["broker"], backend=spec["backend"], set_as_current=False)
    app.conf.update(security_key=spec["key"], security_certificate=spec["cert"], security_cert_store=spec["store"],
                    security_digest="sha256", task_serializer="auth", result_serializer="auth", accept_content=["auth"])
    if spec.get("key_password"):
        app.conf.security_key_password = spec["key_password"].encode()
    app.setup_security()
    if spec.get("tamper"):
        codec = registry._encoders["auth"]

        def tampered(data):
            raw = base64.b64decode(codec.encoder(data))
            return base64.b64encode(raw.replace(b"[[2, 3]", b"[[2, 4]")).decode()

        registry._encoders["auth"] = codec._replace(encoder=tampered)
    if spec.get("inspect"):
        inspect = app.control.inspect(timeout=spec.get("inspect_timeout", 5))
        print(json.dumps([{method: getattr(inspect, method)() for method in spec["inspect"]}]))
        app.close()
        return
    steps = [app.signature(name, args=args, queue=name) for name, args, *_ in spec["tasks"]]
    if spec.get("get"):
        sent = [app.AsyncResult(task_id) for task_id in spec["get"]]
    elif spec.get("chain"):
        sent = [chain(*steps).apply_async()]
    elif spec.get("chord"):
        sent = [chord(steps[:-1])(steps[-1])]
    else:
        sent = [app.send_task(name, args=args, queue=name, task_id=rest[0] if rest else None) for name, args, *rest in spec["tasks"]]
    out = []
    for result in sent:
        entry = {"id": result.id}
        if spec.get("chord"):
            entry["parts"] = [part.id for part in result.parent.results]
        if spec.get("wait", True):
            try:
                entry["result"] = result.get(timeout=spec.get("timeout", 20))
            except Exception as e:  # noqa: BLE001 - the test reads the type
                entry["error"] = type(e).__name__
                entry["message"] = str(e)
        out.append(entry)
    print(json.dumps(out))
    app.close()


if __name__ == "__main__":
    main()
