#!/usr/bin/env python3
"""The end-to-end steps tests/api.rs drives around a real call:

    flow.py setup URL KEY SECRET ENDPOINT NUMBER   order NUMBER, create an application (its
                                                   handler at ENDPOINT) and a rule; prints the
                                                   application id
    flow.py route URL KEY SECRET APP NUMBER        order NUMBER and route it to APP
    flow.py update URL KEY SECRET APP TXID         UpdateSipMediaApplicationCall on a live call
    flow.py check URL KEY SECRET APP NUMBER        what setup created is still there
    flow.py unroute URL KEY SECRET NUMBER          disable and delete the rule on NUMBER
    flow.py connector URL KEY SECRET ENDPOINT CIDR a voice connector whose termination allows
                                                   CIDR, and a RequestUriHostname rule on its
                                                   host; prints the connector id and host
    flow.py termination URL KEY SECRET VC CIDR     the connector's allowed sources become CIDR
    flow.py health URL KEY SECRET VC SOURCE        termination health names SOURCE
    flow.py group URL KEY SECRET PORT...           one voice connector per PORT (its origination
                                                   route 127.0.0.1:PORT over UDP) in a group, in
                                                   that priority order; prints the group's ARN
    flow.py call URL KEY SECRET APP FROM TO        CreateSipMediaApplicationCall (click-to-call:
                                                   the app calls TO from FROM), after checking
                                                   what the API refuses; prints the TransactionId
"""

import sys
import uuid

from voice import client, raises

command, url, key, secret = sys.argv[1:5]
voice = client(url, key, secret)

if command == "setup":
    endpoint, number = sys.argv[5:7]
    voice.create_phone_number_order(ProductType="SipMediaApplicationDialIn",
                                    E164PhoneNumbers=[number])
    app = voice.create_sip_media_application(
        AwsRegion="us-east-1", Name="flow", Endpoints=[{"LambdaArn": endpoint}],
        Tags=[{"Key": "made-by", "Value": "boto3"}])["SipMediaApplication"]
    voice.create_sip_rule(Name="flow", TriggerType="ToPhoneNumber", TriggerValue=number,
                          TargetApplications=[{"SipMediaApplicationId":
                                               app["SipMediaApplicationId"], "Priority": 1}])
    print(app["SipMediaApplicationId"])
elif command == "route":
    app, number = sys.argv[5:7]
    voice.create_phone_number_order(ProductType="SipMediaApplicationDialIn",
                                    E164PhoneNumbers=[number])
    voice.create_sip_rule(Name="route", TriggerType="ToPhoneNumber", TriggerValue=number,
                          TargetApplications=[{"SipMediaApplicationId": app, "Priority": 1}])
    print("ok")
elif command == "update":
    app, transaction = sys.argv[5:7]
    reply = voice.update_sip_media_application_call(
        SipMediaApplicationId=app, TransactionId=transaction,
        Arguments={"Reason": "escalate", "Queue": "tier-2"})
    assert reply["SipMediaApplicationCall"]["TransactionId"] == transaction, reply
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 202, reply
    raises(voice, "NotFoundException", lambda: voice.update_sip_media_application_call(
        SipMediaApplicationId=app, TransactionId=str(uuid.uuid4()), Arguments={}),
        "no call with TransactionId")
    print("ok")
elif command == "check":
    app, number = sys.argv[5:7]
    found = voice.get_sip_media_application(SipMediaApplicationId=app)["SipMediaApplication"]
    assert found["Name"] == "flow", found
    arn = found["SipMediaApplicationArn"]
    assert voice.list_tags_for_resource(ResourceARN=arn)["Tags"] == \
        [{"Key": "made-by", "Value": "boto3"}]
    rules = voice.list_sip_rules(SipMediaApplicationId=app)["SipRules"]
    assert [r["TriggerValue"] for r in rules] == [number], rules
    assert voice.get_phone_number(PhoneNumberId=number)["PhoneNumber"]["Status"] == "Assigned"
    print("ok")
elif command == "unroute":
    number = sys.argv[5]
    for rule in voice.list_sip_rules()["SipRules"]:
        if rule["TriggerValue"] == number:
            voice.update_sip_rule(SipRuleId=rule["SipRuleId"], Name=rule["Name"], Disabled=True)
            voice.delete_sip_rule(SipRuleId=rule["SipRuleId"])
    assert voice.get_phone_number(PhoneNumberId=number)["PhoneNumber"]["Status"] == "Unassigned"
    print("ok")
elif command == "connector":
    endpoint, cidr = sys.argv[5:7]
    app = voice.create_sip_media_application(
        AwsRegion="us-east-1", Name="pbx-calls",
        Endpoints=[{"LambdaArn": endpoint}])["SipMediaApplication"]
    vc = voice.create_voice_connector(Name="pbx", RequireEncryption=False)["VoiceConnector"]
    voice.put_voice_connector_termination(
        VoiceConnectorId=vc["VoiceConnectorId"],
        Termination={"CidrAllowedList": [cidr], "CallingRegions": ["US"], "CpsLimit": 10})
    voice.create_sip_rule(Name="pbx", TriggerType="RequestUriHostname",
                          TriggerValue=vc["OutboundHostName"],
                          TargetApplications=[{"SipMediaApplicationId":
                                               app["SipMediaApplicationId"], "Priority": 1}])
    print(vc["VoiceConnectorId"], vc["OutboundHostName"])
elif command == "termination":
    vc, cidr = sys.argv[5:7]
    voice.put_voice_connector_termination(
        VoiceConnectorId=vc,
        Termination={"CidrAllowedList": [cidr], "CallingRegions": ["US"], "CpsLimit": 10})
    print("ok")
elif command == "health":
    vc, source = sys.argv[5:7]
    health = voice.get_voice_connector_termination_health(VoiceConnectorId=vc)
    assert health["TerminationHealth"]["Source"].startswith(source), health
    assert health["TerminationHealth"]["Timestamp"].year >= 2024, health
    print("ok")
elif command == "call":
    app, caller, callee = sys.argv[5:8]
    raises(voice, "BadRequestException", lambda: voice.create_sip_media_application_call(
        SipMediaApplicationId=app, FromPhoneNumber="+19995550100", ToPhoneNumber=callee),
        "FromPhoneNumber", "not a phone number of this account")
    raises(voice, "BadRequestException", lambda: voice.create_sip_media_application_call(
        SipMediaApplicationId=app, FromPhoneNumber=caller, ToPhoneNumber=callee,
        SipHeaders={"X-AMZN-Thing": "1"}), "SipHeaders.X-AMZN-Thing")
    raises(voice, "NotFoundException", lambda: voice.create_sip_media_application_call(
        SipMediaApplicationId=str(uuid.uuid4()), FromPhoneNumber=caller,
        ToPhoneNumber=callee))
    reply = voice.create_sip_media_application_call(
        SipMediaApplicationId=app, FromPhoneNumber=caller, ToPhoneNumber=callee,
        SipHeaders={"X-Campaign": "spring", "User-to-User": "6a6f62;encoding=hex"},
        ArgumentsMap={"event_id": "123456", "meeting_id": "m-1"})
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 201, reply
    transaction = reply["SipMediaApplicationCall"]["TransactionId"]
    # The default quota is one request a second: the next one at once is throttled.
    raises(voice, "ThrottledClientException", lambda: voice.create_sip_media_application_call(
        SipMediaApplicationId=app, FromPhoneNumber=caller, ToPhoneNumber=callee),
        "per second")
    print(transaction)
elif command == "group":
    items = []
    for i, port in enumerate(sys.argv[5:]):
        vc = voice.create_voice_connector(Name=f"region-{i + 1}", AwsRegion="us-east-1",
                                          RequireEncryption=False)["VoiceConnector"]
        voice.put_voice_connector_origination(VoiceConnectorId=vc["VoiceConnectorId"], Origination={
            "Routes": [{"Host": "127.0.0.1", "Port": int(port), "Protocol": "UDP",
                        "Priority": 1, "Weight": 1}], "Disabled": False})
        items.append({"VoiceConnectorId": vc["VoiceConnectorId"], "Priority": i + 1})
    group = voice.create_voice_connector_group(Name="cross-region",
                                               VoiceConnectorItems=items)["VoiceConnectorGroup"]
    arn = voice.get_voice_connector_group(
        VoiceConnectorGroupId=group["VoiceConnectorGroupId"])["VoiceConnectorGroup"].get(
        "VoiceConnectorGroupArn")
    print(arn)
else:
    sys.exit(f"unknown command {command}")
