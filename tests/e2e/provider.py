#!/usr/bin/env python3
"""The provider's side of the end-to-end test: signs and sends webhooks, and
says which shard each user's rows belong on.

    provider.py send --url URL --secret whsec_… --orders N --disputes M --run ID
        sends every event twice (a provider's retry, same webhook-id) and prints
        the rows each shard must then hold, as `table shard count` lines.
        Exits 0 when every webhook was accepted (202), 1 when some were not,
        and 3 at once when ingest cannot be reached at all (connection refused
        or dropped for a few seconds: a dead port-forward), so that the caller
        can reconnect and send the batch again; the same webhook ids make that
        harmless.
    provider.py plan --orders N --disputes M --run ID
        prints those rows without sending anything
    provider.py ready --url URL
        exits 0 when ingest answers GET /readyz with 200, within a few seconds
    provider.py selftest
        checks the signature and murmur2 against the published vectors
        (/work/shared/VECTORS.md, ingest/src/auth/tests.rs)

Only the standard library: the test needs nothing installed to send.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import sys
import time
import urllib.error
import urllib.request

# How long a webhook may meet a closed or dropped connection before the batch
# gives up: a port-forward that died stays dead, and 120 webhooks × 20 s of
# retries would hide that for 40 minutes.
UNREACHABLE_SECS = 3.0
# How long one webhook may keep getting 503 (the broker did not ack in time;
# a provider retries) before it counts as refused.
OVERLOADED_SECS = 30.0
# Per request: ingest answers within its own request timeout (15 s).
REQUEST_TIMEOUT_SECS = 20.0
EXIT_UNREACHABLE = 3


class Unreachable(Exception):
    """Ingest could not be reached: nothing answered for UNREACHABLE_SECS."""


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks `v1` signature: HMAC-SHA256 keyed with the
    base64 after `whsec_`, over `{id}.{timestamp}.{body}`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def murmur2(data: bytes) -> int:
    """Kafka's Java client murmur2, as a signed 32-bit integer."""
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    whole = len(data) & ~3
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = data[whole:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def shard(user_id: str, shards: int) -> int:
    return (murmur2(user_id.encode()) & 0x7FFFFFFF) % shards


def retry_after(value) -> float:
    """Retry-After in seconds; 1 when absent or an HTTP date."""
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return 1.0


def post(url: str, secret: str, msg_id: str, body: bytes) -> int:
    """Sends one webhook, retrying 503s like a provider; the final HTTP status.
    Raises Unreachable when no connection got an answer for UNREACHABLE_SECS."""
    started = time.monotonic()
    unreachable_since = None
    while True:
        timestamp = int(time.time())
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(secret, msg_id, timestamp, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECS) as response:
                return response.status
        except urllib.error.HTTPError as error:
            unreachable_since = None
            if error.code != 503 or time.monotonic() - started > OVERLOADED_SECS:
                return error.code
            wait = min(retry_after(error.headers.get("retry-after")), 5.0)
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since > UNREACHABLE_SECS:
                raise Unreachable(f"{url}: {getattr(error, 'reason', error)}") from error
            wait = 0.5
        time.sleep(wait)


def events(run: str, orders: int, disputes: int):
    now = int(time.time())
    for i in range(orders):
        yield "orders", {
            "id": f"evt_{run}_o{i}",
            "type": "order.created",
            "created": now,
            "data": {
                "user_id": f"user_{run}_{i}",
                "order_id": f"ord_{run}_{i}",
                "amount": 1000 + i,
                "currency": "eur",
                "status": "created",
            },
        }
    for i in range(disputes):
        yield "disputes", {
            "id": f"evt_{run}_d{i}",
            "type": "dispute.created",
            "created": now,
            "data": {
                "user_id": f"user_{run}_{i}",
                "dispute_id": f"dp_{run}_{i}",
                "order_id": f"ord_{run}_{i}",
                "amount": 500 + i,
                "currency": "eur",
                "status": "needs_response",
            },
        }


def plan(args) -> dict:
    """The rows each (table, shard) holds once the batch is stored: every table
    on every shard, zero included, so that a row on the wrong shard shows."""
    expected = {
        (table, index): 0
        for table in ("orders", "order_events", "disputes", "dispute_events")
        for index in range(args.shards)
    }
    for kind, event in events(args.run, args.orders, args.disputes):
        index = shard(event["data"]["user_id"], args.shards)
        for table in (kind, kind[:-1] + "_events"):
            expected[(table, index)] += 1
    return expected


def print_plan(expected: dict) -> None:
    for (table, index), count in sorted(expected.items()):
        print(table, "abcdefghijklmnop"[index], count)


def send(args) -> int:
    expected = plan(args)
    failures = 0
    try:
        for kind, event in events(args.run, args.orders, args.disputes):
            body = json.dumps(event).encode()
            for attempt in range(2):
                status = post(f"{args.url}/webhooks/{kind}", args.secret, event["id"], body)
                if status != 202:
                    print(f"{kind} {event['id']} attempt {attempt}: HTTP {status}", file=sys.stderr)
                    failures += 1
    except Unreachable as error:
        print(f"ingest unreachable, batch {args.run} abandoned: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print_plan(expected)
    return 1 if failures else 0


def ready(args) -> int:
    try:
        with urllib.request.urlopen(f"{args.url}/readyz", timeout=args.timeout) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError):
        return 1


def selftest() -> int:
    checks = [
        (
            sign(
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                b'{"email":"test@example.com","username":"test_user"}',
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
        (
            sign(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                b'{"test": 2432232314}',
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
        (murmur2(b"21"), -973932308),
        (murmur2(b"foobar"), -790332482),
        (murmur2(b"a-little-bit-long-string"), -985981536),
        (murmur2(b"a-little-bit-longer-string"), -1486304829),
        (murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971),
        (murmur2(b"abc"), 479470107),
        (shard("fd7af248-ce5c-46a5-93d7-1c0c9005b99d", 32), 26),
        (shard("user_1", 3), 0),
    ]
    wrong = [(got, want) for got, want in checks if got != want]
    for got, want in wrong:
        print(f"got {got!r}, want {want!r}", file=sys.stderr)
    print(f"provider.py: {len(checks) - len(wrong)}/{len(checks)} vectors")
    return 1 if wrong else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    batch = argparse.ArgumentParser(add_help=False)
    batch.add_argument("--orders", type=int, default=40)
    batch.add_argument("--disputes", type=int, default=20)
    batch.add_argument("--shards", type=int, default=2)
    batch.add_argument("--run", required=True, help="makes the ids of this batch unique")
    sender = commands.add_parser("send", parents=[batch])
    sender.add_argument("--url", required=True)
    sender.add_argument("--secret", required=True)
    commands.add_parser("plan", parents=[batch])
    probe = commands.add_parser("ready")
    probe.add_argument("--url", required=True)
    probe.add_argument("--timeout", type=float, default=5.0)
    commands.add_parser("selftest")
    args = parser.parse_args()
    if args.command == "send":
        return send(args)
    if args.command == "plan":
        print_plan(plan(args))
        return 0
    if args.command == "ready":
        return ready(args)
    return selftest()


if __name__ == "__main__":
    sys.exit(main())
