#!/usr/bin/env python3
"""boto3 against `sma serve`'s management API: signing, error shapes, the implemented
operations, and the "not supported" answer of the rest. Usage: smoke.py URL KEY SECRET"""

import sys

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

url, key, secret = sys.argv[1:4]
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def client(secret_key=secret, config=NO_RETRIES):
    return boto3.client("chime-sdk-voice", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret_key, config=config)


def error_of(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"], \
            e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("no error")


voice = client()
regions = voice.list_available_voice_connector_regions()["VoiceConnectorRegions"]
assert regions == ["us-east-1"], regions

assert voice.get_global_settings()["VoiceConnector"] == {}
voice.update_global_settings(VoiceConnector={"CdrBucket": "call-records"})
assert voice.get_global_settings()["VoiceConnector"] == {"CdrBucket": "call-records"}
code, message, status = error_of(lambda: voice.update_global_settings(VoiceConnector={"CdrBucket": "x"}))
assert (code, status) == ("BadRequestException", 400), (code, message, status)
assert "CdrBucket" in message, message

code, message, status = error_of(lambda: voice.list_sip_media_applications())
assert (code, status) == ("BadRequestException", 400), (code, message)
assert message == "ListSipMediaApplications is not supported by this runtime yet", message
# The modelled exception class is what botocore raises.
try:
    voice.get_phone_number(PhoneNumberId="+12065550100")
    raise AssertionError("GetPhoneNumber succeeded")
except voice.exceptions.BadRequestException as e:
    assert "GetPhoneNumber" in str(e), e

code, message, status = error_of(lambda: client(secret_key="wrong").list_available_voice_connector_regions())
assert (code, status) == ("InvalidSignatureException", 403), (code, message)
assert "signature we calculated does not match" in message, message

code, message, status = error_of(
    lambda: client(config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1})).get_global_settings())
assert (code, status) == ("MissingAuthenticationTokenException", 403), (code, message)

stranger = boto3.client("chime-sdk-voice", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="AKIANOBODY", aws_secret_access_key="x", config=NO_RETRIES)
code, message, status = error_of(lambda: stranger.get_global_settings())
assert (code, status) == ("UnrecognizedClientException", 403), (code, message)
print("ok")
