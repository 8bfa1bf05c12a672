#!/usr/bin/env python3
"""Writes sigv4.json: requests signed by botocore's own SigV4 signer (the one boto3 and the
AWS CLI use), at a fixed time, for the verifier's tests. Run with botocore installed:

    python3 make_sigv4_fixtures.py > sigv4.json
"""

import datetime
import json

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEY, SECRET = "AKIASMADEVELOPMENT01", "sma/dev/secret/key/do/not/use/in/production"
WHEN = datetime.datetime(2026, 11, 23, 5, 0, 0)
botocore.auth.get_current_datetime = lambda: WHEN

BASE = "http://127.0.0.1:8080"
REQUESTS = [
    ("GET", "/sip-media-applications?max-results=10&next-token=abc%2Fdef%3D%3D", {}, b""),
    ("POST", "/sip-media-applications", {"Content-Type": "application/json"},
     json.dumps({"AwsRegion": "us-east-1", "Name": "ivr", "Endpoints": [
         {"LambdaArn": "arn:aws:lambda:us-east-1:000000000000:function:ivr"}]}).encode()),
    ("PUT", "/phone-numbers/%2B12065550100", {"Content-Type": "application/json"},
     b'{"CallingName": "Example Corp"}'),
    ("POST", "/tags?operation=tag-resource", {"Content-Type": "application/json"},
     b'{"ResourceARN": "arn:aws:chime:us-east-1:000000000000:sma/x", "Tags": []}'),
    ("DELETE", "/sip-rules/a%20b/../rule-1", {"X-Test": "  spaced   out  value "}, b""),
    ("GET", "/phone-numbers?product-type=SipMediaApplicationDialIn&status=Assigned&max-results=5", {}, b""),
]

# Presigned (query-string) requests, valid for EXPIRES seconds from WHEN.
EXPIRES = 900
PRESIGNED = [
    ("GET", "/sip-media-applications?max-results=10", {}, b""),
    ("GET", "/phone-numbers/%2B12065550100", {}, b""),
    ("DELETE", "/sip-rules/rule-1", {}, b""),
]


def presigned():
    out = []
    for method, url, headers, body in PRESIGNED:
        request = AWSRequest(method=method, url=BASE + url, data=body, headers=dict(headers))
        botocore.auth.SigV4QueryAuth(Credentials(KEY, SECRET), "chime", "us-east-1",
                                     expires=EXPIRES).add_auth(request)
        sent = dict(request.headers.items())
        sent["Host"] = "127.0.0.1:8080"
        out.append({
            "method": method,
            "target": request.url[len(BASE):],
            "headers": sorted(sent.items()),
            "body": body.decode(),
        })
    return out


# A request signed for a region the deployment does not serve.
def other_region():
    request = AWSRequest(method="GET", url=BASE + "/sip-media-applications", data=b"")
    botocore.auth.SigV4Auth(Credentials(KEY, SECRET), "chime", "eu-west-9").add_auth(request)
    sent = dict(request.headers.items())
    sent["Host"] = "127.0.0.1:8080"
    return {"method": "GET", "target": "/sip-media-applications",
            "headers": sorted(sent.items()), "body": ""}


out = []
for method, url, headers, body in REQUESTS:
    request = AWSRequest(method=method, url=BASE + url, data=body, headers=dict(headers))
    for region in ["us-east-1"]:
        botocore.auth.SigV4Auth(Credentials(KEY, SECRET), "chime", region).add_auth(request)
    sent = dict(request.headers.items())
    sent["Host"] = "127.0.0.1:8080"
    out.append({
        "method": method,
        "target": url,
        "headers": sorted(sent.items()),
        "body": body.decode(),
    })
print(json.dumps({"access_key": KEY, "secret": SECRET, "time": WHEN.strftime("%Y%m%dT%H%M%SZ"),
                  "requests": out, "presigned": presigned(), "presign_expires": EXPIRES,
                  "other_region": other_region()}, indent=1))
