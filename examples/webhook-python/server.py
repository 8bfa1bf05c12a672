#!/usr/bin/env python3
"""webhook-python: an sma handler behind an HTTP webhook, Python standard library only.

Runs the same decision logic as the hello-python component (../hello-python/ivr.py) and
verifies that every request really comes from the runtime:

    X-Sma-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

Verification: recompute the HMAC over the timestamp, a dot and the raw request body with the
application's secret; compare in constant time; refuse timestamps more than 5 minutes from
now (replays). Usage:

    SMA_WEBHOOK_SECRET=... python3 server.py [--host 127.0.0.1] [--port 8088]

With --port 0 the server picks a free port; it prints `listening on http://HOST:PORT/` once
ready either way.
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hello-python"))
import ivr  # noqa: E402

MAX_BODY = 1024 * 1024
TOLERANCE_SECONDS = 300


def verify_signature(secret: bytes, header: str, body: bytes, now: float) -> str | None:
    """Returns None when the signature is valid, else the reason it is not."""
    fields = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    if "t" not in fields or "v1" not in fields:
        return "malformed signature header"
    try:
        timestamp = int(fields["t"])
    except ValueError:
        return "malformed timestamp"
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return "stale timestamp"
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["v1"]):
        return "signature mismatch"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the runtime pools connections
    # http.server writes the headers and the body in separate segments; with Nagle's algorithm
    # on, the body waits for the client's delayed ACK: about 40 ms on every request.
    disable_nagle_algorithm = True
    secret: bytes = b""

    def _reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return self._reply(400, {"error": "bad Content-Length"})
        if length > MAX_BODY:
            return self._reply(413, {"error": "body too large"})
        body = self.rfile.read(length)
        if self.secret:
            reason = verify_signature(self.secret, self.headers.get("X-Sma-Signature", ""), body, time.time())
            if reason:
                return self._reply(401, {"error": reason})
        try:
            event = json.loads(body)
            response = self.decide(event)
        except (ValueError, KeyError, TypeError, IndexError, StopIteration) as e:
            return self._reply(400, {"error": f"not an invocation event: {e}"})
        self._reply(200, response)

    def decide(self, event: dict) -> dict:
        """The handler's answer to one event; other webhooks subclass this class and override it."""
        return ivr.decide(event, lambda level, message: self.log_message("%s: %s", level, message))

    def log_message(self, fmt, *args):  # quieter than the default, to stderr
        sys.stderr.write("webhook-python: " + (fmt % args) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    args = parser.parse_args()
    Handler.secret = os.environ.get("SMA_WEBHOOK_SECRET", "").encode()
    if not Handler.secret:
        print("warning: SMA_WEBHOOK_SECRET is not set; requests are not verified", file=sys.stderr)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
