#!/usr/bin/env python3
"""Creates a meeting with N attendees through boto3's chime-sdk-meetings client and prints
them as JSON: {"MeetingId": ..., "Attendees": [{"AttendeeId": ..., "JoinToken": ...}, ...]};
or deletes an attendee.

    meeting_setup.py URL KEY SECRET N
    meeting_setup.py URL KEY SECRET delete MEETING_ID ATTENDEE_ID
    meeting_setup.py URL KEY SECRET delete-meeting MEETING_ID
    meeting_setup.py URL KEY SECRET call APP_ID FROM TO KEY=VALUE...   (prints the TransactionId)
    meeting_setup.py URL KEY SECRET update APP_ID TRANSACTION_ID KEY=VALUE...
"""

import json
import sys

import boto3

url, key, secret = sys.argv[1:4]
meetings = boto3.client("chime-sdk-meetings", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)
if sys.argv[4] == "delete":
    meetings.delete_attendee(MeetingId=sys.argv[5], AttendeeId=sys.argv[6])
    print("deleted")
    sys.exit(0)
if sys.argv[4] == "delete-meeting":
    meetings.delete_meeting(MeetingId=sys.argv[5])
    print("deleted")
    sys.exit(0)
if sys.argv[4] in ("call", "update"):
    voice = boto3.client("chime-sdk-voice", endpoint_url=url, region_name="us-east-1",
                         aws_access_key_id=key, aws_secret_access_key=secret)
    app = sys.argv[5]
    if sys.argv[4] == "call":
        caller, callee = sys.argv[6:8]
        reply = voice.create_sip_media_application_call(
            SipMediaApplicationId=app, FromPhoneNumber=caller, ToPhoneNumber=callee,
            ArgumentsMap=dict(a.split("=", 1) for a in sys.argv[8:]))
        print(reply["SipMediaApplicationCall"]["TransactionId"])
    else:
        voice.update_sip_media_application_call(
            SipMediaApplicationId=app, TransactionId=sys.argv[6],
            Arguments=dict(a.split("=", 1) for a in sys.argv[7:]))
        print("updated")
    sys.exit(0)
count = int(sys.argv[4])
meeting = meetings.create_meeting_with_attendees(
    ClientRequestToken="e2e-meeting", MediaRegion="us-east-1", ExternalMeetingId="e2e",
    Attendees=[{"ExternalUserId": f"caller-{i}"} for i in range(count)])
assert not meeting["Errors"], meeting["Errors"]
print(json.dumps({
    "MeetingId": meeting["Meeting"]["MeetingId"],
    "Attendees": [{"AttendeeId": a["AttendeeId"], "JoinToken": a["JoinToken"]}
                  for a in meeting["Attendees"]],
}))
