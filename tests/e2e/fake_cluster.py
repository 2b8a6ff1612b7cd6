#!/usr/bin/env python3
"""A fake of docker, kind, helm and kubectl, just faithful enough for
tests/e2e/run to go through all of its steps without Docker or a cluster:
tests/e2e/test_run.py links it under those four names in a directory put first
on PATH. Which name it runs as picks the tool.

What it models: the kind clusters, the images Docker has, the pipeline
(partitions, deletion policy, generation), the topics the operator would make
(kept by Retain, removed by Delete), and ingest behind `kubectl port-forward`:
an HTTP server that checks each webhook's Standard Webhooks signature, answers
202 and records it. `psql` counts what was recorded, by shard, as the workers
would have stored it. Everything else answers as the real tool does when all
is well.

It runs as `fake_cluster.py TOOL ARGS…`, or linked under the tool's name.
Its state is a directory (HOOKLINE_FAKE_STATE): `calls.log` has one line per
call (the tool's name and its arguments), for the tests to read. Knobs:

    HOOKLINE_FAKE_FAIL              a regular expression: a call whose line
                                    matches fails (exit 1)
    HOOKLINE_FAKE_FORWARD_REQUESTS  a port-forward exits after answering this
                                    many requests (a dying port-forward)
    HOOKLINE_FAKE_PATCH_KILLS_FORWARD=1
                                    a patch of the pipeline ends every running
                                    port-forward, as an ingest pod replaced
                                    under it would
    HOOKLINE_FAKE_KIND_VERSION      what `kind version` says (v0.32.0)
"""

import base64
import fcntl
import json
import os
import re
import shlex
import signal
import sys
from pathlib import Path


def provider():
    """tests/e2e/provider.py (the signature and the shard choice), imported
    only by the calls that need it: most calls must start fast."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    import provider as module

    return module

STATE = Path(os.environ.get("HOOKLINE_FAKE_STATE", "."))
SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
SPEC_PARTITIONS = {"orders.webhooks": 4, "disputes.webhooks": 2}


class State:
    """The fake world, read and written under a lock: calls may overlap (a
    port-forward serves while kubectl answers)."""

    def __init__(self):
        self.path = STATE / "state.json"

    def __enter__(self):
        self.lock = open(STATE / "state.lock", "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {
            "clusters": [],
            "images": [],
            "pipeline": None,
            "topics": {},
        }
        return self.data

    def __exit__(self, *_):
        self.path.write_text(json.dumps(self.data))
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.lock.close()


def log(tool: str, args: list) -> None:
    with open(STATE / "calls.log", "a") as calls:
        calls.write(f"{tool} {shlex.join(args)}\n")


def option(args: list, *names: str, default=None):
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1 :]
    return default


def operands(args: list, with_value: tuple) -> list:
    """`args` without its options (and the values of those in `with_value`)."""
    found, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in with_value:
            skip = True
        elif not arg.startswith("-"):
            found.append(arg)
    return found


# --- docker, kind, helm


def docker(args: list) -> int:
    if args[:2] == ["image", "save"] and "--help" in args:
        print("      --platform string   Save only the given platform variant")
        return 0
    if args[:1] == ["version"]:
        print("linux/amd64")
        return 0
    with State() as state:
        if args[:2] == ["image", "inspect"]:
            return 0 if args[-1] in state["images"] else 1
        if args[:1] == ["pull"]:
            state["images"].append(args[-1])
            return 0
        if args[:1] == ["build"]:
            state["images"].append(option(args, "--tag", "-t"))
            return 0
        if args[:2] == ["image", "save"]:
            output = option(args, "--output", "-o")
            images = operands(args[2:], with_value=("--output", "-o", "--platform"))
            missing = [i for i in images if i not in state["images"]]
            if missing:
                print(f"Error response from daemon: No such image: {missing[0]}", file=sys.stderr)
                return 1
            Path(output).write_text("\n".join(images))
            return 0
    return 0


def kind(args: list) -> int:
    if args[:1] == ["version"]:
        print(f"kind {os.environ.get('HOOKLINE_FAKE_KIND_VERSION', 'v0.32.0')} go1.24.4 linux/amd64")
        return 0
    name = option(args, "--name", default="kind")
    with State() as state:
        if args[:2] == ["get", "clusters"]:
            if not state["clusters"]:
                print("No kind clusters found.", file=sys.stderr)
            for cluster in state["clusters"]:
                print(cluster)
        elif args[:2] == ["create", "cluster"]:
            state["clusters"].append(name)
        elif args[:2] == ["delete", "cluster"]:
            state["clusters"] = [c for c in state["clusters"] if c != name]
            print(f'Deleting cluster "{name}" ...', file=sys.stderr)
        elif args[:2] == ["load", "image-archive"]:
            if not Path(args[-1]).exists():
                print(f"ERROR: failed to load image: {args[-1]} not found", file=sys.stderr)
                return 1
        elif args[:2] == ["export", "logs"]:
            Path(args[2]).mkdir(parents=True, exist_ok=True)
    return 0


def helm(args: list) -> int:
    print('Release "hookline" has been upgraded. Happy Helming!')
    return 0


# --- kubectl


def kubectl(args: list) -> int:
    # Global flags first: the verb and its operands are what is left.
    words, i = [], 0
    while i < len(args):
        if args[i] in ("--context", "-n", "--namespace"):
            i += 2
            continue
        if args[i].startswith("--request-timeout"):
            i += 1
            continue
        words.append(args[i])
        i += 1
    verb = words[0]
    if verb == "port-forward":
        return port_forward(words)
    if verb == "exec":
        return kubectl_exec(words)
    with State() as state:
        pipeline = state["pipeline"]
        if verb == "apply":
            path = option(words, "-f")
            if path.startswith("examples/kubernetes"):
                generation = pipeline["generation"] + 1 if pipeline else 1
                state["pipeline"] = {
                    "partitions": dict(SPEC_PARTITIONS),
                    "policy": "Retain",
                    "generation": generation,
                }
                grow_topics(state)
            print(f"applied {path}")
        elif verb == "patch":
            for op in json.loads(option(words, "-p")):
                if op["path"] == "/spec/topics/0/partitions":
                    pipeline["partitions"]["orders.webhooks"] = op["value"]
                elif op["path"] == "/spec/deletionPolicy":
                    pipeline["policy"] = op["value"]
            pipeline["generation"] += 1
            grow_topics(state)
            if os.environ.get("HOOKLINE_FAKE_PATCH_KILLS_FORWARD") == "1":
                end_port_forwards()
            print("webhookpipeline.hookline.dev/payments patched")
        elif verb == "delete":
            if pipeline and pipeline["policy"] == "Delete":
                state["topics"] = {}
            state["pipeline"] = None
            print('webhookpipeline.hookline.dev "payments" deleted')
        elif verb == "get":
            print(get(state, words), end="")
        elif verb in ("wait", "rollout"):
            print("condition met")
        else:
            print(f"(fake {verb})")
    return 0


def grow_topics(state: dict) -> None:
    for topic, partitions in state["pipeline"]["partitions"].items():
        for name in (topic, topic + ".DLQ"):
            state["topics"][name] = max(state["topics"].get(name, 0), partitions)


def get(state: dict, words: list) -> str:
    what, name = words[1], words[2] if len(words) > 2 and not words[2].startswith("-") else ""
    path = option(words, "-o", default="")
    pipeline = state["pipeline"]
    partitions = pipeline["partitions"] if pipeline else {}
    if path == "name":
        if not pipeline:
            return ""
        return "deployment.apps/payments-ingest\nservice/payments-ingest\nconfigmap/payments-pipeline\n"
    field = path.removeprefix("jsonpath=")
    if what == "secret":
        return base64.b64encode((SECRET + "\n").encode()).decode()
    if what == "whp" and field == "{.metadata.generation}":
        return str(pipeline["generation"])
    if what == "whp" and field == "{.status.topics[0].partitions}":
        return str(partitions["orders.webhooks"])
    if what == "deployment" and name == "payments-worker-orders-webhooks":
        count = partitions["orders.webhooks"]
        return {"{.spec.replicas}": f"{count}", "{.spec.replicas}/{.status.readyReplicas}": f"{count}/{count}"}[field]
    if what == "deployment" and field == "{.metadata.generation}":
        return "1"
    if field == "{.items[*].spec.nodeName}":
        return "hookline-e2e-worker hookline-e2e-worker2"
    return "(fake output)\n"


def kubectl_exec(words: list) -> int:
    target, command = words[1], words[words.index("--") + 1 :]
    if target == "deployment/kafka":
        with State() as state:
            topics = state["topics"]
        if "--list" in command:
            print("".join(f"{t}\n" for t in sorted(topics)), end="")
            return 0
        topic = option(command, "--topic")
        if topic not in topics:
            print(f"Error while executing topic command : Topic '{topic}' does not exist", file=sys.stderr)
            return 1
        print(f"Topic: {topic}\tPartitionCount: {topics[topic]}")
        for p in range(topics[topic]):
            print(f"\tTopic: {topic}\tPartition: {p}\tLeader: 1")
        return 0
    if target.startswith("deployment/pg-"):
        shard_letter = target.removeprefix("deployment/pg-")
        sql = command[-1]
        match = re.search(r"from (\w+) where user_id like 'user_(\w+?)_%'", sql)
        table, batch = match.group(1), match.group(2)
        kind = "orders" if table.startswith("order") else "disputes"
        stored, shard = set(), provider().shard
        received = STATE / "webhooks.jsonl"
        for line in received.read_text().splitlines() if received.exists() else []:
            hook = json.loads(line)
            user = hook["user_id"]
            if hook["kind"] == kind and user.startswith(f"user_{batch}_"):
                if "abcdefghijklmnop"[shard(user, 2)] == shard_letter:
                    stored.add(hook["id"])
        print(len(stored))
        return 0
    return 0


def port_forward(words: list) -> int:
    """Ingest behind a port-forward, until killed or out of requests."""
    import http.server

    sign = provider().sign
    port = int(words[-1].split(":")[0])
    budget = int(os.environ.get("HOOKLINE_FAKE_FORWARD_REQUESTS", "0")) or None
    with open(STATE / "forwards.pids", "a") as pids:
        pids.write(f"{os.getpid()}\n")

    class Ingest(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_GET(self):
            self.answer(200 if self.path == "/readyz" else 404)

        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            msg_id, timestamp = self.headers["webhook-id"], int(self.headers["webhook-timestamp"])
            if self.headers["webhook-signature"] != sign(SECRET, msg_id, timestamp, body):
                self.answer(401)
                return
            event = json.loads(body)
            with open(STATE / "webhooks.jsonl", "a") as received:
                received.write(json.dumps({
                    "kind": self.path.rsplit("/", 1)[-1],
                    "id": event["id"],
                    "user_id": event["data"]["user_id"],
                }) + "\n")
            self.answer(202)

    server = http.server.HTTPServer(("127.0.0.1", port), Ingest)
    print(f"Forwarding from 127.0.0.1:{port} -> 8080", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    served = 0
    while budget is None or served < budget:
        server.handle_request()
        served += 1
    print("E1130 lost connection to pod", file=sys.stderr)
    return 1


def end_port_forwards() -> None:
    pids = STATE / "forwards.pids"
    for pid in pids.read_text().split() if pids.exists() else []:
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass


def main() -> int:
    tool, args = Path(sys.argv[0]).name, sys.argv[1:]
    if tool == Path(__file__).name:
        # Run as `fake_cluster.py TOOL ARGS…`, the way test_run.py's shims do.
        tool, args = args[0], args[1:]
    log(tool, args)
    pattern = os.environ.get("HOOKLINE_FAKE_FAIL")
    if pattern and re.search(pattern, f"{tool} {shlex.join(args)}"):
        print(f"fake {tool}: failing as told ({pattern})", file=sys.stderr)
        return 1
    return {"docker": docker, "kind": kind, "helm": helm, "kubectl": kubectl}[tool](args)


if __name__ == "__main__":
    sys.exit(main())
