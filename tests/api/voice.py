"""Helpers for the chime-sdk-voice tests: boto3 clients for `sma serve`, raw signed requests
(for inputs botocore would refuse to send), and error assertions."""

import json
import urllib.error
import urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

NO_RETRIES = {"max_attempts": 1, "mode": "standard"}


def client(url, key, secret, validate=True, **config):
    """A chime-sdk-voice client; `validate=False` sends what botocore would refuse."""
    return boto3.client(
        "chime-sdk-voice", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(retries=NO_RETRIES, parameter_validation=validate, **config))


def raises(voice, exception, call, *fragments):
    """Asserts `call` raises the modelled exception class `exception` (botocore's own class,
    looked up by the service's error code) with every fragment in its message."""
    cls = getattr(voice.exceptions, exception)
    try:
        call()
    except cls as e:
        message = e.response["Error"]["Message"]
        for fragment in fragments:
            assert fragment in message, f"{exception}: {fragment!r} not in {message!r}"
        return e
    except ClientError as e:
        raise AssertionError(f"expected {exception}, got {e.response['Error']}") from e
    raise AssertionError(f"expected {exception}, the call succeeded")


def raw(url, key, secret, method, path, body=b"", content_type="application/json"):
    """A SigV4-signed request with any body; returns (status, error code header, JSON body)."""
    request = AWSRequest(method=method, url=url + path, data=body,
                         headers={"Content-Type": content_type})
    SigV4Auth(Credentials(key, secret), "chime", "us-east-1").add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=body if body else None, method=method,
                                  headers=dict(prepared.headers.items()))
    try:
        with urllib.request.urlopen(http, timeout=10) as response:
            text = response.read()
            return response.status, None, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, e.headers.get("x-amzn-ErrorType"), json.loads(text) if text else None
