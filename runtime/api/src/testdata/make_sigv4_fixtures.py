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
                  "requests": out}, indent=1))
