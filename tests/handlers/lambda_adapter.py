#!/usr/bin/env python3
"""Serves a Lambda-style Python handler as an sma webhook, its code untouched.

A handler written for the hosted service is a module with `lambda_handler(event, context)`
returning the response dict (or `None`). This adapter POSTs nothing of its own: it reads the
event JSON from the request body, calls the function, and writes what it returned as JSON
(`None` becomes `null`). Every exchange is appended to `--events` as a JSON line
`{"event": ..., "response": ...}` so tests can see what the handler saw and said.

    python3 lambda_adapter.py --handler app.py [--function lambda_handler] [--port 0] [--events FILE]

It prints `listening on http://127.0.0.1:<port>/` once it accepts requests.
"""

import argparse
import importlib.util
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Context:
    """The parts of Lambda's context object handlers read."""

    def __init__(self, name, deadline_ms=20000):
        self.function_name = name
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 128
        self._deadline = time.monotonic() + deadline_ms / 1000

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load(path, function):
    spec = importlib.util.spec_from_file_location("handler_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handler", required=True, help="the handler's .py file")
    parser.add_argument("--function", default="lambda_handler")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--events", help="append each event and response here (JSON lines)")
    args = parser.parse_args()
    handler = load(args.handler, args.function)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            event = json.loads(self.rfile.read(length))
            try:
                result = handler(event, Context(args.function))
                status, body = 200, json.dumps(result)
            except Exception as error:  # what Lambda reports as a function error
                status = 502
                body = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__})
                result = {"error": str(error)}
            if args.events:
                with lock, open(args.events, "a") as log:
                    log.write(json.dumps({"event": event, "response": result}) + "\n")
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
