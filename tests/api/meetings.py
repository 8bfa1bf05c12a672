#!/usr/bin/env python3
"""boto3's chime-sdk-meetings client against `sma serve`: every meetings operation sma
implements, on its success and error paths, pagination and the model's rules. Run by
tests/api.rs; prints one attendee's join token and meeting id (for the dial-in test) then ok.

    meetings.py URL KEY SECRET
"""

import sys
import uuid

import boto3
from botocore.config import Config

from voice import NO_RETRIES, raises

url, key, secret = sys.argv[1:4]


def meetings_client(validate=True):
    return boto3.client(
        "chime-sdk-meetings", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(retries=NO_RETRIES, parameter_validation=validate))


meetings = meetings_client()
loose = meetings_client(validate=False)
NOBODY = str(uuid.uuid4())

# --- CreateMeeting / GetMeeting ---------------------------------------------------------------
created = meetings.create_meeting(
    ClientRequestToken="standup-2026-12-03", MediaRegion="us-east-1",
    ExternalMeetingId="standup", MeetingHostId="host-1",
    Tags=[{"Key": "team", "Value": "voice"}])["Meeting"]
meeting_id = created["MeetingId"]
uuid.UUID(meeting_id)
assert created["ExternalMeetingId"] == "standup" and created["MediaRegion"] == "us-east-1"
assert created["MeetingArn"].endswith(f":meeting/{meeting_id}"), created
assert created["MediaPlacement"]["AudioHostUrl"], created
assert not any(k.startswith("sma:") for k in created), created
assert meetings.get_meeting(MeetingId=meeting_id)["Meeting"] == created
# The same ClientRequestToken is the same request.
again = meetings.create_meeting(ClientRequestToken="standup-2026-12-03",
                                MediaRegion="us-east-1", ExternalMeetingId="standup")
assert again["Meeting"]["MeetingId"] == meeting_id
raises(meetings, "ConflictException", lambda: meetings.create_meeting(
    ClientRequestToken="standup-2026-12-03", MediaRegion="us-east-1",
    ExternalMeetingId="retro"), "ClientRequestToken")
raises(meetings, "BadRequestException", lambda: meetings.create_meeting(
    ClientRequestToken="t-2", MediaRegion="eu-central-1", ExternalMeetingId="x1"), "MediaRegion")
raises(meetings, "BadRequestException", lambda: loose.create_meeting(
    ClientRequestToken="bad token!", MediaRegion="us-east-1", ExternalMeetingId="x1"),
    "ClientRequestToken")
raises(meetings, "BadRequestException", lambda: loose.create_meeting(
    ClientRequestToken="t-3", MediaRegion="us-east-1", ExternalMeetingId="x"),
    "ExternalMeetingId")
raises(meetings, "BadRequestException", lambda: loose.create_meeting(
    ClientRequestToken="t-4", MediaRegion="us-east-1", ExternalMeetingId="x1",
    MeetingFeatures={"Attendee": {"MaxCount": 251}}), "MaxCount")
raises(meetings, "NotFoundException", lambda: meetings.get_meeting(MeetingId=NOBODY), NOBODY)
raises(meetings, "BadRequestException", lambda: loose.get_meeting(MeetingId="not-a-guid"),
       "GUID")

# --- Attendees --------------------------------------------------------------------------------
alice = meetings.create_attendee(MeetingId=meeting_id, ExternalUserId="alice")["Attendee"]
assert alice["ExternalUserId"] == "alice"
assert len(alice["JoinToken"]) >= 32, "at least 128 random bits"
assert alice["Capabilities"] == {"Audio": "SendReceive", "Video": "SendReceive",
                                 "Content": "SendReceive"}, alice
# Idempotent by ExternalUserId.
assert meetings.create_attendee(MeetingId=meeting_id, ExternalUserId="alice")["Attendee"] == alice
assert meetings.get_attendee(MeetingId=meeting_id, AttendeeId=alice["AttendeeId"])[
    "Attendee"] == alice
listener = meetings.create_attendee(
    MeetingId=meeting_id, ExternalUserId="listener",
    Capabilities={"Audio": "Receive", "Video": "None", "Content": "None"})["Attendee"]
assert listener["Capabilities"]["Audio"] == "Receive"
raises(meetings, "BadRequestException", lambda: meetings.create_attendee(
    MeetingId=meeting_id, ExternalUserId="x2",
    Capabilities={"Audio": "SendReceive", "Video": "None", "Content": "Receive"}),
    "Capabilities.Content")
raises(meetings, "BadRequestException", lambda: loose.create_attendee(
    MeetingId=meeting_id, ExternalUserId="x2",
    Capabilities={"Audio": "Loud", "Video": "None", "Content": "None"}), "Capabilities.Audio")
raises(meetings, "BadRequestException", lambda: loose.create_attendee(
    MeetingId=meeting_id, ExternalUserId="x"), "ExternalUserId")
raises(meetings, "NotFoundException", lambda: meetings.create_attendee(
    MeetingId=NOBODY, ExternalUserId="bob"), NOBODY)

# One item breaks the model's rules (botocore would refuse to send it; `loose` does): it is an
# error entry, the others are created.
batch = loose.batch_create_attendee(MeetingId=meeting_id, Attendees=[
    {"ExternalUserId": f"user-{i:03}"} for i in range(30)] + [{"ExternalUserId": "x"}])
assert len(batch["Attendees"]) == 30, batch["Errors"]
assert [e["ExternalUserId"] for e in batch["Errors"]] == ["x"], batch["Errors"]
assert batch["Errors"][0]["ErrorCode"] == "BadRequest", batch["Errors"]
tokens = {a["JoinToken"] for a in batch["Attendees"]} | {alice["JoinToken"]}
assert len(tokens) == 31, "every join token is unique"



def all_attendees(meeting, size=100):
    """ListAttendees page by page (botocore has no paginator for it)."""
    found, token = [], None
    while True:
        page = meetings.list_attendees(MeetingId=meeting, MaxResults=size,
                                       **({"NextToken": token} if token else {}))
        assert len(page["Attendees"]) <= size
        found += page["Attendees"]
        token = page.get("NextToken")
        if not token:
            return found


# ListAttendees pages through all 32, 10 (then 7) at a time, each once, in the same order.
seen = [a["AttendeeId"] for a in all_attendees(meeting_id, 10)]
assert len(seen) == 32 and len(set(seen)) == 32, len(seen)
assert [a["AttendeeId"] for a in all_attendees(meeting_id, 7)] == seen
raises(meetings, "BadRequestException", lambda: meetings.list_attendees(
    MeetingId=meeting_id, NextToken="forged"), "NextToken")

# --- Capabilities -----------------------------------------------------------------------------
updated = meetings.update_attendee_capabilities(
    MeetingId=meeting_id, AttendeeId=listener["AttendeeId"],
    Capabilities={"Audio": "SendReceive", "Video": "None", "Content": "None"})["Attendee"]
assert updated["Capabilities"]["Audio"] == "SendReceive"
raises(meetings, "NotFoundException", lambda: meetings.update_attendee_capabilities(
    MeetingId=meeting_id, AttendeeId=NOBODY,
    Capabilities={"Audio": "Send", "Video": "None", "Content": "None"}), NOBODY)
meetings.batch_update_attendee_capabilities_except(
    MeetingId=meeting_id, ExcludedAttendeeIds=[{"AttendeeId": alice["AttendeeId"]}],
    Capabilities={"Audio": "Receive", "Video": "None", "Content": "None"})
everyone = all_attendees(meeting_id)
assert {a["AttendeeId"]: a["Capabilities"]["Audio"] for a in everyone}[alice["AttendeeId"]] == \
    "SendReceive"
assert sum(a["Capabilities"]["Audio"] == "Receive" for a in everyone) == 31
raises(meetings, "BadRequestException", lambda: loose.batch_update_attendee_capabilities_except(
    MeetingId=meeting_id, ExcludedAttendeeIds=[],
    Capabilities={"Audio": "Receive", "Video": "None", "Content": "None"}),
    "ExcludedAttendeeIds")

# --- DeleteAttendee ---------------------------------------------------------------------------
victim = batch["Attendees"][0]
meetings.delete_attendee(MeetingId=meeting_id, AttendeeId=victim["AttendeeId"])
raises(meetings, "NotFoundException", lambda: meetings.get_attendee(
    MeetingId=meeting_id, AttendeeId=victim["AttendeeId"]), victim["AttendeeId"])
raises(meetings, "NotFoundException", lambda: meetings.delete_attendee(
    MeetingId=meeting_id, AttendeeId=victim["AttendeeId"]))

# --- Limits: MeetingFeatures.Attendee.MaxCount --------------------------------------------------
small = meetings.create_meeting_with_attendees(
    ClientRequestToken="small-1", MediaRegion="us-east-1", ExternalMeetingId="small",
    MeetingFeatures={"Attendee": {"MaxCount": 2}},
    Attendees=[{"ExternalUserId": "one"}, {"ExternalUserId": "two"},
               {"ExternalUserId": "three"}])
assert [a["ExternalUserId"] for a in small["Attendees"]] == ["one", "two"], small
assert [(e["ExternalUserId"], e["ErrorCode"]) for e in small["Errors"]] == \
    [("three", "LimitExceeded")], small["Errors"]
small_id = small["Meeting"]["MeetingId"]
raises(meetings, "LimitExceededException", lambda: meetings.create_attendee(
    MeetingId=small_id, ExternalUserId="four"), "maximum of 2")

# --- Tags -------------------------------------------------------------------------------------
arn = created["MeetingArn"]
assert meetings.list_tags_for_resource(ResourceARN=arn)["Tags"] == \
    [{"Key": "team", "Value": "voice"}]
meetings.tag_resource(ResourceARN=arn, Tags=[{"Key": "floor", "Value": "3"}])
meetings.untag_resource(ResourceARN=arn, TagKeys=["team"])
assert meetings.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "floor", "Value": "3"}]

# --- DeleteMeeting ----------------------------------------------------------------------------
meetings.delete_meeting(MeetingId=small_id)
raises(meetings, "NotFoundException", lambda: meetings.get_meeting(MeetingId=small_id))
raises(meetings, "NotFoundException", lambda: meetings.delete_meeting(MeetingId=small_id))
raises(meetings, "NotFoundException", lambda: meetings.list_attendees(MeetingId=small_id))

# The model's other operations say they are not supported, in the modelled error shape.
raises(meetings, "BadRequestException", lambda: meetings.start_meeting_transcription(
    MeetingId=meeting_id, TranscriptionConfiguration={"EngineTranscribeSettings": {
        "LanguageCode": "en-US"}}), "StartMeetingTranscription is not supported by this runtime")

print(meeting_id, alice["AttendeeId"], alice["JoinToken"])
print("ok")
