#!/usr/bin/env python3
"""What a migrating team's tooling does against the management API, with boto3: requests
the hosted service takes and this runtime used to refuse (unknown members, `null` members,
presigned requests), requests it used to accept and must refuse (trailing data, another
region's credentials, `Tags: []`), the front ends' answers to requests that are no
operation, and the operations such tooling calls (number search, logging configuration,
phone number settings, emergency calling). Run by tests/api.rs against a server whose
`sma.toml` has a number pool (+1206555-0300..0309 Local in WA/Seattle, +1800555-0100..0101
toll-free) and the account id 111122223333.

    migration.py URL KEY SECRET ENDPOINT
"""

import json
import sys
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from voice import client, raises, raw

url, key, secret, endpoint = sys.argv[1:5]
voice = client(url, key, secret)
loose = client(url, key, secret, validate=False)


def error(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("no error")


# --- Request bodies ----------------------------------------------------------------------
# Members the model does not have are ignored (a newer SDK keeps working); null is absent.
status, code, body = raw(url, key, secret, "POST", "/sip-media-applications", json.dumps(
    {"AwsRegion": "us-east-1", "Name": "newer-sdk", "Endpoints": [{"LambdaArn": endpoint}],
     "FutureMember": {"x": 1}, "Tags": None}).encode())
assert status == 201 and code is None, (status, code, body)
newer = body["SipMediaApplication"]["SipMediaApplicationId"]
# Anything after the JSON value is refused, and nothing is created.
for trailing in [b' xyz', b'{"Name": "second"}']:
    status, code, body = raw(url, key, secret, "POST", "/sip-media-applications", json.dumps(
        {"AwsRegion": "us-east-1", "Name": "trailing", "Endpoints": [{"LambdaArn": endpoint}]}
    ).encode() + trailing)
    assert (status, code) == (400, "BadRequestException") and "more follows" in \
        body["Message"], (status, code, body)
assert [a["Name"] for a in voice.list_sip_media_applications()["SipMediaApplications"]] == \
    ["newer-sdk"]
# The model's TagList has at least one tag.
raises(loose, "BadRequestException", lambda: loose.create_sip_media_application(
    AwsRegion="us-east-1", Name="no-tags", Endpoints=[{"LambdaArn": endpoint}], Tags=[]),
    "Tags", "1 to 50")
raises(loose, "BadRequestException", lambda: loose.create_voice_connector(
    Name="no-tags", RequireEncryption=False, Tags=[]), "Tags")

# UpdateGlobalSettings is validated like every other operation.
status, code, body = raw(url, key, secret, "PUT", "/settings", b"")
assert (status, code) == (400, "BadRequestException") and "VoiceConnector is required" in \
    body["Message"], (status, code, body)
for bucket in ["Call-Records", "x", "records-s3alias", "-records"]:
    raises(loose, "BadRequestException", lambda: loose.update_global_settings(
        VoiceConnector={"CdrBucket": bucket}), "CdrBucket", bucket)
voice.update_global_settings(VoiceConnector={"CdrBucket": "call-records-2"})
assert voice.get_global_settings()["VoiceConnector"] == {"CdrBucket": "call-records-2"}

# --- What AWS front ends answer, always with a JSON error body -----------------------------
status, code, body = raw(url, key, secret, "POST", "/sip-media-applications",
                         b'{"Name": "' + b"x" * (2 << 20) + b'"}')
assert (status, code) == (413, "RequestEntityTooLargeException") and body["Message"], \
    (status, code, body)
status, code, body = raw(url, key, secret, "PATCH", "/sip-media-applications")
assert (status, code) == (404, "UnknownOperationException") and "PATCH" in body["Message"], \
    (status, code, body)
status, code, body = raw(url, key, secret, "GET", "/no-such-resource")
assert (status, code) == (404, "UnknownOperationException"), (status, code, body)
status, code, body = raw(url, key, secret, "GET", "/sip-media-applications?next-token=" +
                         "a" * 9000)
assert (status, code) == (414, "MalformedHttpRequestException") and "8192" in \
    body["Message"], (status, code, body)

# --- Signatures --------------------------------------------------------------------------
# Credentials scoped to a region this node does not serve are refused.
elsewhere = boto3.client("chime-sdk-voice", endpoint_url=url, region_name="eu-central-1",
                         aws_access_key_id=key, aws_secret_access_key=secret,
                         config=Config(retries={"max_attempts": 1, "mode": "standard"}))
assert error(lambda: elsewhere.list_sip_media_applications()) == \
    ("InvalidSignatureException", 403)
# A presigned request (query-string authentication) is accepted until it expires.
presigned = voice.generate_presigned_url("get_sip_media_application",
                                         Params={"SipMediaApplicationId": newer},
                                         ExpiresIn=60)
assert "X-Amz-Signature=" in presigned and "Authorization" not in presigned
with urllib.request.urlopen(presigned, timeout=10) as response:
    assert json.loads(response.read())["SipMediaApplication"]["Name"] == "newer-sdk"
tampered = presigned.replace(newer, newer[:-1] + ("0" if newer[-1] != "0" else "1"))
try:
    urllib.request.urlopen(tampered, timeout=10)
    raise AssertionError("a tampered presigned request was accepted")
except urllib.error.HTTPError as e:
    assert e.code == 403 and e.headers.get("x-amzn-ErrorType") == "InvalidSignatureException"

# --- Searching and ordering numbers ------------------------------------------------------
countries = voice.list_supported_phone_number_countries(
    ProductType="SipMediaApplicationDialIn")["PhoneNumberCountries"]
assert countries == [{"CountryCode": "US", "SupportedPhoneNumberTypes": ["Local", "TollFree"]}], \
    countries
assert voice.list_supported_phone_number_countries(ProductType="VoiceConnector")[
    "PhoneNumberCountries"] == [{"CountryCode": "US", "SupportedPhoneNumberTypes": ["Local"]}]
found = voice.search_available_phone_numbers(AreaCode="206", Country="US")["E164PhoneNumbers"]
assert found == [f"+120655503{i:02}" for i in range(10)], found
assert voice.search_available_phone_numbers(City="Seattle", State="WA", MaxResults=3)[
    "E164PhoneNumbers"] == ["+12065550300", "+12065550301", "+12065550302"]
assert voice.search_available_phone_numbers(TollFreePrefix="800")["E164PhoneNumbers"] == \
    ["+18005550100", "+18005550101"]
assert voice.search_available_phone_numbers(State="OR")["E164PhoneNumbers"] == []
# Pages follow their tokens.
pages, token = [], None
while True:
    kwargs = {"AreaCode": "206", "MaxResults": 4}
    if token:
        kwargs["NextToken"] = token
    page = voice.search_available_phone_numbers(**kwargs)
    pages.append(page["E164PhoneNumbers"])
    token = page.get("NextToken")
    if not token:
        break
assert [len(p) for p in pages] == [4, 4, 2], pages
# Search, then order: an ordered number is no longer available.
chosen = found[:2]
order = voice.create_phone_number_order(ProductType="SipMediaApplicationDialIn",
                                        E164PhoneNumbers=chosen)["PhoneNumberOrder"]
assert order["Status"] == "Successful", order
after = voice.search_available_phone_numbers(AreaCode="206")["E164PhoneNumbers"]
assert after == found[2:], after
raises(voice, "BadRequestException", lambda: voice.search_available_phone_numbers(
    Country="US"), "AreaCode, City, State or TollFreePrefix")
raises(voice, "BadRequestException", lambda: voice.search_available_phone_numbers(
    City="Seattle"), "City needs State")
raises(loose, "BadRequestException", lambda: loose.search_available_phone_numbers(
    TollFreePrefix="812"), "TollFreePrefix")
raises(voice, "BadRequestException", lambda: voice.search_available_phone_numbers(
    Country="GB"), "PhoneNumberType")

# --- Outbound calling name ---------------------------------------------------------------
assert "CallingName" not in voice.get_phone_number_settings()
voice.update_phone_number_settings(CallingName="Example Corp")
settings = voice.get_phone_number_settings()
assert settings["CallingName"] == "Example Corp" and settings["CallingNameUpdatedTimestamp"]
raises(loose, "BadRequestException",
       lambda: loose.update_phone_number_settings(CallingName="Example Corp!"), "CallingName")
number = voice.update_phone_number(PhoneNumberId=chosen[0], CallingName="Support Line")[
    "PhoneNumber"]
assert number["CallingName"] == "Support Line", number
assert voice.get_phone_number(PhoneNumberId=chosen[0])["PhoneNumber"]["CallingName"] == \
    "Support Line"

# --- SIP media application message logs --------------------------------------------------
assert voice.get_sip_media_application_logging_configuration(SipMediaApplicationId=newer)[
    "SipMediaApplicationLoggingConfiguration"] == {"EnableSipMediaApplicationMessageLogs": False}
reply = voice.put_sip_media_application_logging_configuration(
    SipMediaApplicationId=newer,
    SipMediaApplicationLoggingConfiguration={"EnableSipMediaApplicationMessageLogs": True})
assert reply["SipMediaApplicationLoggingConfiguration"] == \
    {"EnableSipMediaApplicationMessageLogs": True}
assert voice.get_sip_media_application_logging_configuration(SipMediaApplicationId=newer)[
    "SipMediaApplicationLoggingConfiguration"]["EnableSipMediaApplicationMessageLogs"] is True
raises(voice, "NotFoundException", lambda: voice.get_sip_media_application_logging_configuration(
    SipMediaApplicationId="00000000-0000-0000-0000-000000000000"))

# --- Emergency calling -------------------------------------------------------------------
valid = voice.validate_e911_address(
    AwsAccountId="111122223333", StreetNumber="410", StreetInfo="Terry Ave N",
    City="Seattle", State="WA", Country="US", PostalCode="98109")
assert valid["ValidationResult"] == 0, valid
assert valid["Address"]["streetName"] == "Terry" and valid["Address"]["streetSuffix"] == "AVE"
assert valid["Address"]["postDirectional"] == "N" and valid["AddressExternalId"]
again = voice.validate_e911_address(
    AwsAccountId="111122223333", StreetNumber="410", StreetInfo="Terry Ave N",
    City="Seattle", State="WA", Country="US", PostalCode="98109")
assert again["AddressExternalId"] == valid["AddressExternalId"]
corrected = voice.validate_e911_address(
    AwsAccountId="111122223333", StreetNumber="410", StreetInfo="Terry Avenue North",
    City="Seattle", State="Washington", Country="us", PostalCode="98109-5210")
assert corrected["ValidationResult"] == 1, corrected
assert corrected["Address"]["state"] == "WA" and corrected["Address"]["postalCodePlus4"] == "5210"
assert corrected["CandidateAddressList"][0]["streetInfo"] == "Terry AVE N", corrected
for bad in [{"PostalCode": "9810"}, {"State": "Atlantis"}, {"Country": "FR"},
            {"StreetNumber": "Main"}]:
    fields = {"AwsAccountId": "111122223333", "StreetNumber": "410",
              "StreetInfo": "Terry Ave N", "City": "Seattle", "State": "WA", "Country": "US",
              "PostalCode": "98109"}
    fields.update(bad)
    result = voice.validate_e911_address(**fields)
    assert result["ValidationResult"] == 2 and "AddressExternalId" not in result, (bad, result)
raises(voice, "BadRequestException", lambda: voice.validate_e911_address(
    AwsAccountId="999999999999", StreetNumber="1", StreetInfo="Main St", City="Seattle",
    State="WA", Country="US", PostalCode="98109"), "AwsAccountId")
raises(loose, "BadRequestException", lambda: loose.validate_e911_address(
    AwsAccountId="111122223333", StreetNumber="1", StreetInfo="  ", City="Seattle",
    State="WA", Country="US", PostalCode="98109"), "StreetInfo")

vc = voice.create_voice_connector(Name="pbx", RequireEncryption=False)["VoiceConnector"][
    "VoiceConnectorId"]
raises(voice, "NotFoundException",
       lambda: voice.get_voice_connector_emergency_calling_configuration(VoiceConnectorId=vc))
config = {"DNIS": [{"EmergencyPhoneNumber": "+12065550911", "TestPhoneNumber": "+12065550933",
                    "CallingCountry": "US"}]}
reply = voice.put_voice_connector_emergency_calling_configuration(
    VoiceConnectorId=vc, EmergencyCallingConfiguration=config)
assert reply["EmergencyCallingConfiguration"] == config, reply
assert voice.get_voice_connector_emergency_calling_configuration(VoiceConnectorId=vc)[
    "EmergencyCallingConfiguration"] == config
raises(loose, "BadRequestException", lambda: loose.put_voice_connector_emergency_calling_configuration(
    VoiceConnectorId=vc, EmergencyCallingConfiguration={"DNIS": [
        {"EmergencyPhoneNumber": "+0911", "CallingCountry": "US"}]}), "EmergencyPhoneNumber")
raises(loose, "BadRequestException", lambda: loose.put_voice_connector_emergency_calling_configuration(
    VoiceConnectorId=vc, EmergencyCallingConfiguration={"DNIS": [
        {"EmergencyPhoneNumber": "+12065550911", "CallingCountry": "usa"}]}), "CallingCountry")
raises(loose, "BadRequestException", lambda: loose.put_voice_connector_emergency_calling_configuration(
    VoiceConnectorId=vc, EmergencyCallingConfiguration={"DNIS": [
        {"EmergencyPhoneNumber": "+12065550911", "CallingCountry": "US"},
        {"EmergencyPhoneNumber": "+12065550912", "CallingCountry": "US"}]}), "twice")
# A refused configuration left the stored one as it was.
assert voice.get_voice_connector_emergency_calling_configuration(VoiceConnectorId=vc)[
    "EmergencyCallingConfiguration"] == config
voice.delete_voice_connector_emergency_calling_configuration(VoiceConnectorId=vc)
raises(voice, "NotFoundException",
       lambda: voice.delete_voice_connector_emergency_calling_configuration(VoiceConnectorId=vc))
raises(voice, "NotFoundException", lambda: voice.put_voice_connector_emergency_calling_configuration(
    VoiceConnectorId="abcdefghijklmnopqrstuv", EmergencyCallingConfiguration=config))

# Voice analytics and Alexa skill operations still say they are not supported.
raises(voice, "BadRequestException", lambda: voice.list_voice_profile_domains(),
       "is not supported by this runtime")
print(newer)
