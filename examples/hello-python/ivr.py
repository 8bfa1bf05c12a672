"""The IVR menu flow as a plain function: invocation event (dict) in, response (dict) out.

Pure Python with no imports beyond the standard library, so the same decision logic runs as a
WebAssembly component (app.py) and behind a webhook (../webhook-python/server.py).
"""

MENU = "Hello from Python. For sales, press 1. For support, press 2."
RETRY = "Sorry, that is not a valid choice."
GOODBYE = "We did not receive a valid choice. Goodbye."
DEPARTMENTS = {"1": "sales", "2": "support"}


def speak(call_id, text):
    return {"Type": "Speak", "Parameters": {"CallId": call_id, "Text": text}}


def hangup(call_id):
    return {"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}}


def decide(event, log=lambda level, message: None):
    """Returns the response for one invocation event."""
    details = event["CallDetails"]
    leg_a = next(p for p in details["Participants"] if p["ParticipantTag"] == "LEG-A")
    action = event.get("ActionData") or {}
    call_id = (action.get("Parameters") or {}).get("CallId") or leg_a["CallId"]
    kind = event["InvocationEventType"]
    response = {"SchemaVersion": event["SchemaVersion"]}

    if kind == "NEW_INBOUND_CALL":
        log("info", f"new call from {leg_a['From']}")
        response["Actions"] = [{
            "Type": "SpeakAndGetDigits",
            "Parameters": {
                "CallId": call_id,
                "SpeechParameters": {"Text": MENU},
                "FailureSpeechParameters": {"Text": RETRY},
                "MinNumberOfDigits": 1,
                "MaxNumberOfDigits": 1,
                "InputDigitsRegex": "^[12]$",
                "Repeat": 3,
                "RepeatDurationInMilliseconds": 5000,
            },
        }]
        response["TransactionAttributes"] = {"menu": "main"}
    elif kind == "ACTION_SUCCESSFUL" and action.get("Type") == "SpeakAndGetDigits":
        department = DEPARTMENTS.get(action.get("ReceivedDigits", ""))
        if department:
            response["Actions"] = [speak(call_id, f"Connecting you to {department}. Goodbye."), hangup(call_id)]
            response["TransactionAttributes"] = {"menu": "done", "department": department}
        else:
            response["Actions"] = [speak(call_id, GOODBYE), hangup(call_id)]
            response["TransactionAttributes"] = {"menu": "done"}
    elif kind == "ACTION_FAILED" and action.get("Type") == "SpeakAndGetDigits":
        response["Actions"] = [speak(call_id, GOODBYE), hangup(call_id)]
        response["TransactionAttributes"] = {"menu": "done"}
    elif kind in ("ACTION_FAILED", "INVALID_LAMBDA_RESPONSE"):
        log("warn", f"giving up after {kind}")
        response["Actions"] = [hangup(call_id)]
    else:
        response["Actions"] = []
    return response
