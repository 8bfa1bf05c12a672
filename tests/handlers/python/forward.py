"""A call-forwarding handler in the hosted service's style (our own code): it bridges the
caller to a number, reads LEG-B from the participants when the bridge succeeds, and
apologises when it fails."""

FORWARD_TO = "+12065550199"


def lambda_handler(event, context):
    event_type = event["InvocationEventType"]
    participants = event["CallDetails"]["Participants"]
    if event_type == "NEW_INBOUND_CALL":
        caller = participants[0]["From"]
        return {"SchemaVersion": "1.0", "Actions": [{
            "Type": "CallAndBridge",
            "Parameters": {"CallTimeoutSeconds": "20", "CallerIdNumber": caller,
                           "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": FORWARD_TO}]},
        }]}
    if event_type == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "CallAndBridge":
        # A handler written for the hosted service trusts LEG-B to be there.
        leg_b = [p for p in participants if p["ParticipantTag"] == "LEG-B"][0]
        return {"SchemaVersion": "1.0", "TransactionAttributes": {"legB": leg_b["CallId"]}}
    if event_type == "ACTION_FAILED" and event["ActionData"]["Type"] == "CallAndBridge":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Speak", "Parameters": {"Text": "The call could not be connected.",
                                             "CallId": ""}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0", "ParticipantTag": ""}},
        ]}
    return None
