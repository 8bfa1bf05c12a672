"""A handler in the style of those written for the hosted service (our own code).

It asks for a number to call with SpeakAndGetDigits and refuses premium numbers with a
look-ahead in InputDigitsRegex. Its shapes are the ones real handlers send: no CallId on the
speech actions, numbers written as strings, a copied Hangup template with an empty
ParticipantTag, a branch on InvalidDigitsReceived for every collection failure, and `None`
for the events it does not handle.
"""

import logging

logger = logging.getLogger()

HANGUP = {"Type": "Hangup", "Parameters": {"SipResponseCode": "0", "ParticipantTag": ""}}


def speak(text):
    return {
        "Type": "Speak",
        "Parameters": {"Text": text, "Engine": "neural", "LanguageCode": "en-US",
                       "TextType": "text", "VoiceId": "Joanna"},
    }


def ask_for_number():
    return {
        "Type": "SpeakAndGetDigits",
        "Parameters": {
            "InputDigitsRegex": "^(?!1900)1\\d{10}$",
            "SpeechParameters": {"Text": "Enter the number to call, then press pound.",
                                 "Engine": "neural", "LanguageCode": "en-US",
                                 "TextType": "text", "VoiceId": "Joanna"},
            "FailureSpeechParameters": {"Text": "That number cannot be called.",
                                        "Engine": "neural", "LanguageCode": "en-US",
                                        "TextType": "text", "VoiceId": "Joanna"},
            "MinNumberOfDigits": "11",
            "MaxNumberOfDigits": "11",
            "TerminatorDigits": ["#"],
            "InBetweenDigitsDurationInMilliseconds": "3000",
            "Repeat": "1",
            "RepeatDurationInMilliseconds": "6000",
        },
    }


def respond(actions, attributes=None):
    response = {"SchemaVersion": "1.0", "Actions": actions}
    if attributes is not None:
        response["TransactionAttributes"] = attributes
    return response


def lambda_handler(event, context):
    event_type = event["InvocationEventType"]
    logger.info("event %s", event_type)
    if event_type == "NEW_INBOUND_CALL":
        return respond([ask_for_number()])
    if event_type == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "SpeakAndGetDigits":
        number = event["ActionData"]["ReceivedDigits"]
        return respond([speak("Calling " + " ".join(number)), HANGUP], {"number": number})
    if event_type == "ACTION_FAILED":
        if event["ActionData"].get("ErrorType") == "InvalidDigitsReceived":
            return respond([speak("Sorry, goodbye."), HANGUP])
    return None
