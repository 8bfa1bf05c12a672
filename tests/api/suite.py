#!/usr/bin/env python3
"""boto3 against `sma serve`'s management API: every chime-sdk-voice operation sma
implements, on its success and error paths, pagination, bad input and concurrent conflicting
requests. Run by tests/api.rs against a freshly started server whose
`[api] max_numbers_per_voice_connector` is 2.

    suite.py URL KEY SECRET ENDPOINT      (ENDPOINT: a webhook URL the applications use)
"""

import json
import sys
import threading

from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from voice import client, raises, raw

url, key, secret, endpoint = sys.argv[1:5]
voice = client(url, key, secret)
loose = client(url, key, secret, validate=False)

# --- Authentication ------------------------------------------------------------------------
def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("no error")


assert error_code(lambda: client(url, key, "wrong").list_sip_media_applications()) == \
    ("InvalidSignatureException", 403)
assert error_code(lambda: client(url, key, secret, signature_version=UNSIGNED)
                  .list_sip_media_applications()) == ("MissingAuthenticationTokenException", 403)
assert error_code(lambda: client(url, "AKIANOBODY", "x").list_sip_media_applications()) == \
    ("UnrecognizedClientException", 403)

# --- Regions and global settings -------------------------------------------------------------
assert voice.list_available_voice_connector_regions()["VoiceConnectorRegions"] == ["us-east-1"]
assert voice.get_global_settings()["VoiceConnector"] == {}
voice.update_global_settings(VoiceConnector={"CdrBucket": "call-records"})
assert voice.get_global_settings()["VoiceConnector"] == {"CdrBucket": "call-records"}
raises(voice, "BadRequestException",
       lambda: voice.update_global_settings(VoiceConnector={"CdrBucket": "x"}), "CdrBucket")

# --- Phone numbers ---------------------------------------------------------------------------
DIAL_IN = ["+12065550101", "+12065550102", "+12065550103"]
TRUNK = ["+12065550201", "+12065550202", "+12065550203"]
order = voice.create_phone_number_order(ProductType="SipMediaApplicationDialIn",
                                        E164PhoneNumbers=DIAL_IN)["PhoneNumberOrder"]
assert order["Status"] == "Successful" and order["OrderType"] == "New", order
assert [o["Status"] for o in order["OrderedPhoneNumbers"]] == ["Acquired"] * 3
assert order["CreatedTimestamp"].year >= 2024  # botocore parsed the ISO 8601 timestamp
assert voice.get_phone_number_order(PhoneNumberOrderId=order["PhoneNumberOrderId"])[
    "PhoneNumberOrder"]["PhoneNumberOrderId"] == order["PhoneNumberOrderId"]
trunk_order = voice.create_phone_number_order(ProductType="VoiceConnector",
                                              E164PhoneNumbers=TRUNK, Name="trunk lines")
assert trunk_order["PhoneNumberOrder"]["Status"] == "Successful"
partial = voice.create_phone_number_order(ProductType="SipMediaApplicationDialIn",
                                          E164PhoneNumbers=[DIAL_IN[0], "+12065550104"])
assert partial["PhoneNumberOrder"]["Status"] == "Partial", partial
orders = voice.list_phone_number_orders()["PhoneNumberOrders"]
assert len(orders) == 3, orders
raises(voice, "BadRequestException", lambda: voice.create_phone_number_order(
    ProductType="SipMediaApplicationDialIn", E164PhoneNumbers=["+1206555010x"]),
    "E164PhoneNumbers[0]", "E.164")
raises(loose, "BadRequestException", lambda: loose.create_phone_number_order(
    ProductType="Fax", E164PhoneNumbers=["+12065550109"]), "ProductType", "Fax")
raises(voice, "NotFoundException", lambda: voice.get_phone_number_order(
    PhoneNumberOrderId="00000000-0000-0000-0000-000000000000"), "does not exist")

number = voice.get_phone_number(PhoneNumberId=DIAL_IN[0])["PhoneNumber"]
assert number["E164PhoneNumber"] == DIAL_IN[0] and number["Status"] == "Unassigned", number
assert number["Country"] == "US" and number["Type"] == "Local", number
assert number["ProductType"] == "SipMediaApplicationDialIn"
assert number["OrderId"] == order["PhoneNumberOrderId"]
assert voice.get_phone_number(PhoneNumberId=TRUNK[0])[
    "PhoneNumber"]["Name"] == "trunk lines"
raises(voice, "NotFoundException", lambda: voice.get_phone_number(PhoneNumberId="+19995550100"))

listed = voice.list_phone_numbers(ProductType="VoiceConnector")["PhoneNumbers"]
assert sorted(n["E164PhoneNumber"] for n in listed) == TRUNK, listed
assert len(voice.list_phone_numbers()["PhoneNumbers"]) == 7
page = voice.list_phone_numbers(MaxResults=3)
assert len(page["PhoneNumbers"]) == 3 and page["NextToken"]
rest = voice.list_phone_numbers(MaxResults=100, NextToken=page["NextToken"])
assert len(rest["PhoneNumbers"]) == 4 and "NextToken" not in rest
raises(voice, "BadRequestException", lambda: voice.list_phone_numbers(NextToken="forged"),
       "NextToken")

updated = voice.update_phone_number(PhoneNumberId=DIAL_IN[2], CallingName="Acme Support")
assert updated["PhoneNumber"]["CallingName"] == "Acme Support"
assert updated["PhoneNumber"]["CallingNameStatus"] == "UpdateSucceeded"
raises(voice, "BadRequestException",
       lambda: voice.update_phone_number(PhoneNumberId=DIAL_IN[2], CallingName="Acme!"),
       "CallingName")
flipped = voice.update_phone_number(PhoneNumberId="+12065550104", ProductType="VoiceConnector")
assert flipped["PhoneNumber"]["ProductType"] == "VoiceConnector"

voice.delete_phone_number(PhoneNumberId="+12065550104")
deleted = voice.get_phone_number(PhoneNumberId="+12065550104")["PhoneNumber"]
assert deleted["Status"] == "DeleteInProgress" and deleted["DeletionTimestamp"], deleted
raises(voice, "BadRequestException",
       lambda: voice.delete_phone_number(PhoneNumberId="+12065550104"), "already deleted")
assert len(voice.list_phone_numbers(Status="DeleteInProgress")["PhoneNumbers"]) == 1
restored = voice.restore_phone_number(PhoneNumberId="+12065550104")["PhoneNumber"]
assert restored["Status"] == "Unassigned" and "DeletionTimestamp" not in restored
raises(voice, "BadRequestException",
       lambda: voice.restore_phone_number(PhoneNumberId="+12065550104"), "not deleted")

batch = voice.batch_update_phone_number(UpdatePhoneNumberRequestItems=[
    {"PhoneNumberId": DIAL_IN[1], "CallingName": "Front Desk"},
    {"PhoneNumberId": "+19995550100", "CallingName": "Nobody"},
    {"PhoneNumberId": DIAL_IN[2], "CallingName": "!!"},
])["PhoneNumberErrors"]
assert sorted((e["PhoneNumberId"], e["ErrorCode"]) for e in batch) == \
    [("+12065550103", "BadRequest"), ("+19995550100", "NotFound")], batch
assert voice.get_phone_number(PhoneNumberId=DIAL_IN[1])["PhoneNumber"]["CallingName"] == \
    "Front Desk"

# --- SIP media applications ------------------------------------------------------------------
apps = []
for i in range(5):
    app = voice.create_sip_media_application(
        AwsRegion="us-east-1", Name=f"ivr-{i}", Endpoints=[{"LambdaArn": endpoint}],
        Tags=[{"Key": "team", "Value": "ivr"}])["SipMediaApplication"]
    assert app["Name"] == f"ivr-{i}" and app["AwsRegion"] == "us-east-1", app
    assert app["SipMediaApplicationArn"] == \
        f"arn:aws:chime:us-east-1:000000000000:sma/{app['SipMediaApplicationId']}"
    assert set(app) == {"SipMediaApplicationId", "AwsRegion", "Name", "Endpoints",
                        "CreatedTimestamp", "UpdatedTimestamp", "SipMediaApplicationArn"}, app
    apps.append(app)
app_id = apps[0]["SipMediaApplicationId"]
assert voice.get_sip_media_application(SipMediaApplicationId=app_id)[
    "SipMediaApplication"]["Endpoints"] == [{"LambdaArn": endpoint}]
# Pagination: the SDK's paginator walks every page.
pages = list(voice.get_paginator("list_sip_media_applications").paginate(
    PaginationConfig={"PageSize": 2}))
assert [len(p["SipMediaApplications"]) for p in pages] == [2, 2, 1], pages
assert sorted(a["SipMediaApplicationId"] for p in pages for a in p["SipMediaApplications"]) == \
    sorted(a["SipMediaApplicationId"] for a in apps)
raises(loose, "BadRequestException", lambda: loose.list_sip_media_applications(MaxResults=0),
       "MaxResults")

raises(voice, "BadRequestException", lambda: voice.create_sip_media_application(
    AwsRegion="eu-west-3", Name="x", Endpoints=[{"LambdaArn": endpoint}]), "eu-west-3")
raises(voice, "BadRequestException", lambda: voice.create_sip_media_application(
    AwsRegion="us-east-1", Name="bad/name", Endpoints=[{"LambdaArn": endpoint}]), "Name")
raises(voice, "BadRequestException", lambda: voice.create_sip_media_application(
    AwsRegion="us-east-1", Name="x", Endpoints=[{"LambdaArn": "/nowhere/handler.wasm"}]),
    "Endpoints[0].LambdaArn", "does not exist")
raises(voice, "BadRequestException", lambda: voice.create_sip_media_application(
    AwsRegion="us-east-1", Name="x",
    Endpoints=[{"LambdaArn": "arn:aws:lambda:us-east-1:111122223333:function:ivr"}]),
    "Lambda function ARN")
raises(loose, "BadRequestException", lambda: loose.create_sip_media_application(
    AwsRegion="us-east-1", Name="x", Endpoints=[]), "Endpoints")
raises(loose, "BadRequestException", lambda: loose.create_sip_media_application(
    Name="x", Endpoints=[{"LambdaArn": endpoint}]), "AwsRegion")
renamed = voice.update_sip_media_application(SipMediaApplicationId=app_id, Name="ivr-main")
assert renamed["SipMediaApplication"]["Name"] == "ivr-main"
raises(voice, "NotFoundException", lambda: voice.get_sip_media_application(
    SipMediaApplicationId="00000000-0000-0000-0000-000000000000"), "does not exist")
status, code, body = raw(url, key, secret, "PUT", f"/sip-media-applications/{app_id}",
                         json.dumps({"AwsRegion": "us-west-2"}).encode())
assert (status, code) == (400, "BadRequestException") and "region" in body["Message"], body

# --- SIP rules -------------------------------------------------------------------------------
targets = [{"SipMediaApplicationId": app_id, "Priority": 1, "AwsRegion": "us-east-1"}]
rule = voice.create_sip_rule(Name="main", TriggerType="ToPhoneNumber", TriggerValue=DIAL_IN[0],
                             TargetApplications=targets)["SipRule"]
assert rule["Disabled"] is False and rule["TriggerValue"] == DIAL_IN[0], rule
rule_id = rule["SipRuleId"]
assert voice.get_sip_rule(SipRuleId=rule_id)["SipRule"]["Name"] == "main"
assigned = voice.get_phone_number(PhoneNumberId=DIAL_IN[0])["PhoneNumber"]
assert assigned["Status"] == "Assigned", assigned
assert assigned["Associations"][0]["Name"] == "SipRuleId"
assert assigned["Associations"][0]["Value"] == rule_id
assert [n["E164PhoneNumber"] for n in voice.list_phone_numbers(
    FilterName="SipRuleId", FilterValue=rule_id)["PhoneNumbers"]] == [DIAL_IN[0]]
raises(voice, "ConflictException", lambda: voice.create_sip_rule(
    Name="again", TriggerType="ToPhoneNumber", TriggerValue=DIAL_IN[0],
    TargetApplications=targets), "already the trigger")
raises(voice, "NotFoundException", lambda: voice.create_sip_rule(
    Name="unknown", TriggerType="ToPhoneNumber", TriggerValue="+19995550100",
    TargetApplications=targets), "inventory")
raises(voice, "ConflictException", lambda: voice.create_sip_rule(
    Name="trunk", TriggerType="ToPhoneNumber", TriggerValue=TRUNK[0],
    TargetApplications=targets), "SipMediaApplicationDialIn")
raises(voice, "BadRequestException", lambda: voice.create_sip_rule(
    Name="two", TriggerType="ToPhoneNumber", TriggerValue=DIAL_IN[1],
    TargetApplications=targets + [{"SipMediaApplicationId": apps[1]["SipMediaApplicationId"],
                                   "Priority": 2, "AwsRegion": "us-east-1"}]),
    "one target application per region")
raises(loose, "BadRequestException", lambda: loose.create_sip_rule(
    Name="x", TriggerType="ToCarrier", TriggerValue=DIAL_IN[1], TargetApplications=targets),
    "TriggerType")
raises(voice, "BadRequestException", lambda: voice.create_sip_rule(
    Name="x", TriggerType="RequestUriHostname", TriggerValue="not a host!",
    TargetApplications=targets), "host name")
raises(voice, "NotFoundException", lambda: voice.create_sip_rule(
    Name="x", TriggerType="ToPhoneNumber", TriggerValue=DIAL_IN[1],
    TargetApplications=[{"SipMediaApplicationId": "nope", "Priority": 1}]), "nope")
# A number a rule uses is assigned: it can be neither deleted nor moved to another product.
raises(voice, "ConflictException",
       lambda: voice.delete_phone_number(PhoneNumberId=DIAL_IN[0]), rule_id)
raises(voice, "ConflictException", lambda: voice.update_phone_number(
    PhoneNumberId=DIAL_IN[0], ProductType="VoiceConnector"), "ProductType")

host_rule = voice.create_sip_rule(
    Name="pbx", TriggerType="RequestUriHostname", TriggerValue="PBX.Example.com",
    TargetApplications=[{"SipMediaApplicationId": apps[1]["SipMediaApplicationId"],
                         "Priority": 1}])["SipRule"]
assert host_rule["TriggerValue"] == "pbx.example.com"
assert host_rule["TargetApplications"][0]["AwsRegion"] == "us-east-1"
assert [r["SipRuleId"] for r in voice.list_sip_rules(SipMediaApplicationId=app_id)[
    "SipRules"]] == [rule_id]
assert len(voice.list_sip_rules()["SipRules"]) == 2
raises(voice, "NotFoundException",
       lambda: voice.list_sip_rules(SipMediaApplicationId="nope"), "nope")

# An application an enabled rule targets cannot be deleted.
raises(voice, "ConflictException",
       lambda: voice.delete_sip_media_application(SipMediaApplicationId=app_id), rule_id)
changed = voice.update_sip_rule(SipRuleId=rule_id, Name="main-2", TargetApplications=[
    {"SipMediaApplicationId": apps[2]["SipMediaApplicationId"], "Priority": 1}])["SipRule"]
assert changed["Name"] == "main-2"
assert changed["TargetApplications"][0]["SipMediaApplicationId"] == \
    apps[2]["SipMediaApplicationId"]
voice.delete_sip_media_application(SipMediaApplicationId=app_id)
raises(voice, "NotFoundException",
       lambda: voice.get_sip_media_application(SipMediaApplicationId=app_id))
# A rule must be disabled before it is deleted.
raises(voice, "ConflictException", lambda: voice.delete_sip_rule(SipRuleId=rule_id), "disable")
assert voice.update_sip_rule(SipRuleId=rule_id, Name="main-2", Disabled=True)[
    "SipRule"]["Disabled"] is True
voice.delete_sip_rule(SipRuleId=rule_id)
raises(voice, "NotFoundException", lambda: voice.get_sip_rule(SipRuleId=rule_id))
assert voice.get_phone_number(PhoneNumberId=DIAL_IN[0])["PhoneNumber"]["Status"] == \
    "Unassigned"

# Concurrent conflicting requests: one rule per trigger, whoever comes first.
outcomes = []


def race(i):
    try:
        client(url, key, secret).create_sip_rule(
            Name=f"race-{i}", TriggerType="ToPhoneNumber", TriggerValue=DIAL_IN[1],
            TargetApplications=[{"SipMediaApplicationId": apps[3]["SipMediaApplicationId"],
                                 "Priority": 1}])
        outcomes.append("created")
    except ClientError as e:
        outcomes.append(e.response["Error"]["Code"])


threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert sorted(outcomes) == ["ConflictException"] * 7 + ["created"], outcomes
assert len([r for r in voice.list_sip_rules()["SipRules"]
            if r["TriggerValue"] == DIAL_IN[1]]) == 1

# --- Voice connectors ------------------------------------------------------------------------
vc = voice.create_voice_connector(Name="pbx-east", RequireEncryption=False,
                                  AwsRegion="us-east-1")["VoiceConnector"]
vc_id = vc["VoiceConnectorId"]
assert len(vc_id) == 22 and vc["OutboundHostName"] == f"{vc_id}.voiceconnector.sma.local", vc
assert vc["VoiceConnectorArn"].endswith(f":vc/{vc_id}")
vc2 = voice.create_voice_connector(Name="pbx-west", RequireEncryption=True)["VoiceConnector"]
assert len(voice.list_voice_connectors()["VoiceConnectors"]) == 2
assert voice.update_voice_connector(VoiceConnectorId=vc_id, Name="pbx-main",
                                    RequireEncryption=True)["VoiceConnector"]["Name"] == "pbx-main"
assert voice.get_voice_connector(VoiceConnectorId=vc_id)["VoiceConnector"]["RequireEncryption"]
raises(loose, "BadRequestException", lambda: loose.create_voice_connector(
    Name="x", RequireEncryption=False, AwsRegion="mars-north-1"), "AwsRegion")
raises(voice, "NotFoundException", lambda: voice.get_voice_connector(VoiceConnectorId="nope"))

raises(voice, "NotFoundException",
       lambda: voice.get_voice_connector_termination(VoiceConnectorId=vc_id), "termination")
termination = voice.put_voice_connector_termination(VoiceConnectorId=vc_id, Termination={
    "CpsLimit": 5, "CallingRegions": ["US"], "CidrAllowedList": ["203.0.113.0/24"],
    "Disabled": False})["Termination"]
assert termination["CpsLimit"] == 5 and termination["CidrAllowedList"] == ["203.0.113.0/24"]
assert voice.get_voice_connector_termination(VoiceConnectorId=vc_id)["Termination"] == termination
raises(voice, "BadRequestException", lambda: voice.put_voice_connector_termination(
    VoiceConnectorId=vc_id, Termination={"CidrAllowedList": ["203.0.113.0/33"]}),
    "CidrAllowedList[0]")
voice.put_voice_connector_termination_credentials(
    VoiceConnectorId=vc_id, Credentials=[{"Username": "pbx", "Password": "s3cret"},
                                         {"Username": "backup", "Password": "other"}])
assert sorted(voice.list_voice_connector_termination_credentials(VoiceConnectorId=vc_id)[
    "Usernames"]) == ["backup", "pbx"]
voice.delete_voice_connector_termination_credentials(VoiceConnectorId=vc_id,
                                                     Usernames=["backup"])
assert voice.list_voice_connector_termination_credentials(VoiceConnectorId=vc_id)[
    "Usernames"] == ["pbx"]
raises(voice, "NotFoundException", lambda: voice.delete_voice_connector_termination_credentials(
    VoiceConnectorId=vc_id, Usernames=["nobody"]), "nobody")
raises(voice, "NotFoundException",
       lambda: voice.get_voice_connector_termination_health(VoiceConnectorId=vc_id),
       "no termination health")

origination = voice.put_voice_connector_origination(VoiceConnectorId=vc_id, Origination={
    "Routes": [{"Host": "10.0.0.5", "Port": 5060, "Protocol": "UDP", "Priority": 1,
                "Weight": 10}], "Disabled": False})["Origination"]
assert origination["Routes"][0]["Host"] == "10.0.0.5"
assert voice.get_voice_connector_origination(VoiceConnectorId=vc_id)["Origination"] == origination
raises(loose, "BadRequestException", lambda: loose.put_voice_connector_origination(
    VoiceConnectorId=vc_id, Origination={"Routes": [
        {"Host": "10.0.0.5", "Port": 5060, "Protocol": "SCTP", "Priority": 1, "Weight": 1}]}),
    "Protocol")
voice.delete_voice_connector_origination(VoiceConnectorId=vc_id)
raises(voice, "NotFoundException",
       lambda: voice.get_voice_connector_origination(VoiceConnectorId=vc_id))

assert voice.get_voice_connector_logging_configuration(VoiceConnectorId=vc_id)[
    "LoggingConfiguration"] == {"EnableSIPLogs": False, "EnableMediaMetricLogs": False}
voice.put_voice_connector_logging_configuration(
    VoiceConnectorId=vc_id, LoggingConfiguration={"EnableSIPLogs": True})
assert voice.get_voice_connector_logging_configuration(VoiceConnectorId=vc_id)[
    "LoggingConfiguration"]["EnableSIPLogs"] is True

streaming = voice.put_voice_connector_streaming_configuration(
    VoiceConnectorId=vc_id, StreamingConfiguration={
        "DataRetentionInHours": 24, "Disabled": False,
        "StreamingNotificationTargets": [{"NotificationTarget": "SQS"}]})
assert streaming["StreamingConfiguration"]["DataRetentionInHours"] == 24
assert voice.get_voice_connector_streaming_configuration(VoiceConnectorId=vc_id)[
    "StreamingConfiguration"]["StreamingNotificationTargets"] == [{"NotificationTarget": "SQS"}]
voice.delete_voice_connector_streaming_configuration(VoiceConnectorId=vc_id)
raises(voice, "NotFoundException",
       lambda: voice.get_voice_connector_streaming_configuration(VoiceConnectorId=vc_id))

errors = voice.associate_phone_numbers_with_voice_connector(
    VoiceConnectorId=vc_id, E164PhoneNumbers=[TRUNK[0], TRUNK[1], DIAL_IN[2], "+19995550100"])[
    "PhoneNumberErrors"]
assert sorted((e["PhoneNumberId"], e["ErrorCode"]) for e in errors) == \
    [(DIAL_IN[2], "Conflict"), ("+19995550100", "NotFound")], errors
on_vc = voice.list_phone_numbers(FilterName="VoiceConnectorId", FilterValue=vc_id)["PhoneNumbers"]
assert sorted(n["E164PhoneNumber"] for n in on_vc) == TRUNK[:2]
assert all(n["Status"] == "Assigned" for n in on_vc)
# The limit (2 numbers per voice connector in this server's sma.toml) refuses the whole request
# and leaves nothing behind.
raises(voice, "ResourceLimitExceededException",
       lambda: voice.associate_phone_numbers_with_voice_connector(
           VoiceConnectorId=vc_id, E164PhoneNumbers=[TRUNK[2]]), "limit is 2")
assert voice.get_phone_number(PhoneNumberId=TRUNK[2])["PhoneNumber"]["Associations"] == []
# A number on one voice connector is not taken by another unless forced.
errors = voice.associate_phone_numbers_with_voice_connector(
    VoiceConnectorId=vc2["VoiceConnectorId"], E164PhoneNumbers=[TRUNK[1]])["PhoneNumberErrors"]
assert [e["ErrorCode"] for e in errors] == ["Conflict"], errors
assert voice.associate_phone_numbers_with_voice_connector(
    VoiceConnectorId=vc2["VoiceConnectorId"], E164PhoneNumbers=[TRUNK[1]],
    ForceAssociate=True)["PhoneNumberErrors"] == []
raises(voice, "ConflictException",
       lambda: voice.delete_voice_connector(VoiceConnectorId=vc_id), "disassociate")
assert voice.disassociate_phone_numbers_from_voice_connector(
    VoiceConnectorId=vc_id, E164PhoneNumbers=[TRUNK[0]])["PhoneNumberErrors"] == []
assert [e["ErrorCode"] for e in voice.disassociate_phone_numbers_from_voice_connector(
    VoiceConnectorId=vc_id, E164PhoneNumbers=[TRUNK[0]])["PhoneNumberErrors"]] == ["BadRequest"]

# --- Voice connector groups ------------------------------------------------------------------
extra = [voice.create_voice_connector(Name=f"spare-{i}", RequireEncryption=False)[
    "VoiceConnector"]["VoiceConnectorId"] for i in range(2)]
items = [{"VoiceConnectorId": v, "Priority": i + 1} for i, v in enumerate([vc_id] + extra)]
raises(voice, "ResourceLimitExceededException", lambda: voice.create_voice_connector_group(
    Name="too-many", VoiceConnectorItems=items + [
        {"VoiceConnectorId": vc2["VoiceConnectorId"], "Priority": 9}]), "at most 3")
group = voice.create_voice_connector_group(Name="east", VoiceConnectorItems=items[:1])[
    "VoiceConnectorGroup"]
group_id = group["VoiceConnectorGroupId"]
assert group["VoiceConnectorItems"] == items[:1], group
raises(voice, "NotFoundException", lambda: voice.create_voice_connector_group(
    Name="x", VoiceConnectorItems=[{"VoiceConnectorId": "nope", "Priority": 1}]), "nope")
assert voice.get_voice_connector_group(VoiceConnectorGroupId=group_id)[
    "VoiceConnectorGroup"]["Name"] == "east"
assert len(voice.list_voice_connector_groups()["VoiceConnectorGroups"]) == 1
regrouped = voice.update_voice_connector_group(VoiceConnectorGroupId=group_id, Name="east-2",
                                               VoiceConnectorItems=items)["VoiceConnectorGroup"]
assert len(regrouped["VoiceConnectorItems"]) == 3
raises(voice, "ConflictException",
       lambda: voice.delete_voice_connector(VoiceConnectorId=extra[0]), group_id)
assert voice.associate_phone_numbers_with_voice_connector_group(
    VoiceConnectorGroupId=group_id, E164PhoneNumbers=[TRUNK[2]])["PhoneNumberErrors"] == []
assert voice.get_phone_number(PhoneNumberId=TRUNK[2])["PhoneNumber"]["Associations"][0][
    "Name"] == "VoiceConnectorGroupId"
raises(voice, "ConflictException",
       lambda: voice.delete_voice_connector_group(VoiceConnectorGroupId=group_id), "disassociate")
assert voice.disassociate_phone_numbers_from_voice_connector_group(
    VoiceConnectorGroupId=group_id, E164PhoneNumbers=[TRUNK[2]])["PhoneNumberErrors"] == []
voice.delete_voice_connector_group(VoiceConnectorGroupId=group_id)
raises(voice, "NotFoundException",
       lambda: voice.get_voice_connector_group(VoiceConnectorGroupId=group_id))
voice.delete_voice_connector(VoiceConnectorId=extra[0])
raises(voice, "NotFoundException", lambda: voice.get_voice_connector(VoiceConnectorId=extra[0]))

# --- Tags ------------------------------------------------------------------------------------
arn = apps[1]["SipMediaApplicationArn"]
assert voice.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team",
                                                                   "Value": "ivr"}]
voice.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "prod"},
                                          {"Key": "team", "Value": "voice"}])
assert sorted((t["Key"], t["Value"]) for t in voice.list_tags_for_resource(
    ResourceARN=arn)["Tags"]) == [("env", "prod"), ("team", "voice")]
voice.untag_resource(ResourceARN=arn, TagKeys=["env"])
assert voice.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team",
                                                                   "Value": "voice"}]
voice.tag_resource(ResourceARN=vc["VoiceConnectorArn"], Tags=[{"Key": "site", "Value": "hq"}])
assert voice.list_tags_for_resource(ResourceARN=vc["VoiceConnectorArn"])["Tags"] == \
    [{"Key": "site", "Value": "hq"}]
raises(voice, "BadRequestException", lambda: voice.tag_resource(
    ResourceARN=arn, Tags=[{"Key": "aws:owner", "Value": "x"}]), "aws:")
voice.tag_resource(ResourceARN=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(40)])
raises(voice, "ResourceLimitExceededException", lambda: voice.tag_resource(
    ResourceARN=arn, Tags=[{"Key": f"j{i}", "Value": "v"} for i in range(10)]), "limit is 50")
assert len(voice.list_tags_for_resource(ResourceARN=arn)["Tags"]) == 41
raises(voice, "NotFoundException", lambda: voice.list_tags_for_resource(
    ResourceARN="arn:aws:chime:us-east-1:000000000000:sma/nope"), "no resource")

# --- The error paths of the remaining operations ---------------------------------------------
NOBODY = "00000000-0000-0000-0000-000000000000"
raises(voice, "NotFoundException", lambda: voice.update_sip_media_application(
    SipMediaApplicationId=NOBODY, Name="x"), NOBODY)
raises(voice, "NotFoundException", lambda: voice.update_sip_rule(SipRuleId=NOBODY, Name="x"),
       NOBODY)
raises(voice, "BadRequestException", lambda: voice.update_sip_rule(
    SipRuleId=host_rule["SipRuleId"], Name="bad/name"), "Name")
raises(loose, "BadRequestException",
       lambda: loose.list_phone_number_orders(MaxResults=0), "MaxResults")
raises(loose, "BadRequestException",
       lambda: loose.list_voice_connectors(MaxResults=500), "MaxResults")
raises(loose, "BadRequestException",
       lambda: loose.list_voice_connector_groups(MaxResults=0), "MaxResults")
raises(voice, "NotFoundException", lambda: voice.update_voice_connector(
    VoiceConnectorId="nope", Name="x", RequireEncryption=False), "nope")
raises(voice, "NotFoundException", lambda: voice.update_voice_connector_group(
    VoiceConnectorGroupId=NOBODY, Name="x", VoiceConnectorItems=[]), NOBODY)
raises(voice, "NotFoundException",
       lambda: voice.list_voice_connector_termination_credentials(VoiceConnectorId="nope"))
raises(loose, "BadRequestException", lambda: loose.put_voice_connector_termination_credentials(
    VoiceConnectorId=vc_id, Credentials=[{"Username": "only-a-name"}]), "Credentials[0].Password")
raises(voice, "NotFoundException", lambda: voice.put_voice_connector_logging_configuration(
    VoiceConnectorId="nope", LoggingConfiguration={"EnableSIPLogs": True}))
raises(loose, "BadRequestException", lambda: loose.put_voice_connector_streaming_configuration(
    VoiceConnectorId=vc_id, StreamingConfiguration={
        "DataRetentionInHours": 1, "Disabled": False,
        "StreamingNotificationTargets": [{"NotificationTarget": "SQS"}] * 4}), "1 to 3")
raises(voice, "NotFoundException",
       lambda: voice.delete_voice_connector_origination(VoiceConnectorId=vc_id), "origination")
voice.delete_voice_connector_termination(VoiceConnectorId=vc_id)
raises(voice, "NotFoundException",
       lambda: voice.get_voice_connector_termination(VoiceConnectorId=vc_id))
raises(voice, "NotFoundException",
       lambda: voice.delete_voice_connector_termination(VoiceConnectorId=vc_id))
raises(voice, "NotFoundException", lambda: voice.associate_phone_numbers_with_voice_connector_group(
    VoiceConnectorGroupId=NOBODY, E164PhoneNumbers=[TRUNK[2]]), NOBODY)
raises(voice, "NotFoundException", lambda: voice.untag_resource(
    ResourceARN="arn:aws:chime:us-east-1:000000000000:vc/nope", TagKeys=["site"]))
# BatchDeletePhoneNumber: the unassigned numbers go to the deletion queue, the others are
# reported one by one.
errors = voice.batch_delete_phone_number(
    PhoneNumberIds=[TRUNK[0], TRUNK[1], "+19995550100"])["PhoneNumberErrors"]
assert sorted((e["PhoneNumberId"], e["ErrorCode"]) for e in errors) == \
    [(TRUNK[1], "Conflict"), ("+19995550100", "NotFound")], errors
assert voice.get_phone_number(PhoneNumberId=TRUNK[0])["PhoneNumber"]["Status"] == \
    "DeleteInProgress"

# --- Bad input -------------------------------------------------------------------------------
status, code, body = raw(url, key, secret, "POST", "/sip-media-applications", b"{not json")
assert (status, code) == (400, "BadRequestException") and "Invalid request body" in \
    body["Message"], body
status, code, body = raw(url, key, secret, "POST", "/sip-media-applications", json.dumps(
    {"AwsRegion": "us-east-1", "Name": 5, "Endpoints": [{"LambdaArn": endpoint}]}).encode())
assert (status, code) == (400, "BadRequestException") and "Name" in body["Message"], body
status, code, body = raw(url, key, secret, "POST", "/sip-media-applications", json.dumps(
    {"AwsRegion": "us-east-1", "Name": "x", "Endpoints": [{"LambdaArn": "nowhere"}],
     "Colour": "blue"}).encode())
assert (status, code) == (400, "BadRequestException") and "LambdaArn" in body["Message"], body
status, code, body = raw(url, key, secret, "POST", "/sip-media-applications",
                         b'{"Name": "' + b"x" * (2 << 20) + b'"}')
assert (status, code) == (413, "RequestEntityTooLargeException"), (status, code, body)
status, code, body = raw(url, key, secret, "GET", "/no-such-resource")
assert (status, code) == (404, "UnknownOperationException"), (status, code, body)
# The refused creations left nothing behind.
assert len(voice.list_sip_media_applications()["SipMediaApplications"]) == 4
# The model's other operations say they are not supported, in the modelled error shape.
raises(voice, "BadRequestException", lambda: voice.list_voice_profile_domains(),
       "ListVoiceProfileDomains is not supported by this runtime")

print("ok")
