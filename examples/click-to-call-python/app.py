#!/usr/bin/env python3
"""click-to-call-python: an appointment-reminder call placed through the management API.

Two parts, Python standard library and boto3:

  app.py   the SIP media application's webhook. For a call the API placed it gets
           NEW_OUTBOUND_CALL (the ArgumentsMap of the request at
           ActionData.Parameters.Arguments), then RINGING, then CALL_ANSWERED once the
           customer picks up: it reads the reminder, asks "press 1 to confirm, 2 to cancel"
           and thanks the customer. The appointment travels in TransactionAttributes.
  call.py  places the call: CreateSipMediaApplicationCall with boto3 against sma's API.

Usage:

    SMA_WEBHOOK_SECRET=dev-secret python3 app.py --port 8089
    python3 call.py --endpoint-url http://127.0.0.1:8080 --app click-to-call \\
        --from +12065550100 --to +14255550142 --time "3 pm tomorrow"

Requests are verified with the application's secret by examples/webhook-python's handler,
which this one extends.
"""

import argparse
import os
import sys
from http.server import ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "webhook-python"))
import server  # noqa: E402


def speak(call_id: str, text: str) -> dict:
    return {"Type": "Speak", "Parameters": {"CallId": call_id, "Text": text}}


def hangup(call_id: str) -> dict:
    return {"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}}


def decide(event: dict) -> dict:
    """The reminder flow: one response per event."""
    kind = event["InvocationEventType"]
    details = event["CallDetails"]
    attributes = details.get("TransactionAttributes") or {}
    leg = details["Participants"][0]
    call_id = leg["CallId"]
    actions = []
    if kind == "NEW_OUTBOUND_CALL":
        # Nothing to do before the answer; keep what the request carried for later events.
        arguments = event.get("ActionData", {}).get("Parameters", {}).get("Arguments", {})
        attributes = {"appointment": arguments.get("appointment", "your appointment"),
                      "customer": arguments.get("customer", "there")}
    elif kind == "CALL_ANSWERED":
        actions = [{"Type": "SpeakAndGetDigits", "Parameters": {
            "CallId": call_id,
            "InputDigitsRegex": "^[12]$", "MinNumberOfDigits": 1, "MaxNumberOfDigits": 1,
            "Repeat": 2, "RepeatDurationInMilliseconds": 5000,
            "SpeechParameters": {"Text": f"Hello {attributes.get('customer', 'there')}. "
                                         f"This is a reminder of {attributes.get('appointment')}. "
                                         "Press 1 to confirm, or 2 to cancel."},
            "FailureSpeechParameters": {"Text": "Sorry, please press 1 or 2."}}}]
    elif kind == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "SpeakAndGetDigits":
        choice = event["ActionData"].get("ReceivedDigits", "")
        attributes["confirmed"] = "yes" if choice == "1" else "no"
        text = "Thank you, see you then." if choice == "1" else "Your appointment is cancelled."
        actions = [speak(call_id, text), hangup(call_id)]
    elif kind == "ACTION_FAILED":
        actions = [speak(call_id, "We will call you again later. Goodbye."), hangup(call_id)]
    # RINGING, HANGUP, CALL_UPDATE_REQUESTED and the rest: nothing to do.
    return {"SchemaVersion": "1.0", "Actions": actions, "TransactionAttributes": attributes}


class Handler(server.Handler):
    """webhook-python's request handling (signature check, limits, errors) with this flow."""

    def decide(self, event: dict) -> dict:
        response = decide(event)
        sys.stderr.write(f"click-to-call: {event['InvocationEventType']} -> "
                         f"{[a['Type'] for a in response['Actions']]}\n")
        return response

    def log_message(self, fmt, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args()
    Handler.secret = os.environ.get("SMA_WEBHOOK_SECRET", "").encode()
    if not Handler.secret:
        print("warning: SMA_WEBHOOK_SECRET is not set; requests are not verified",
              file=sys.stderr)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
