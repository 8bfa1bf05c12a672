#!/usr/bin/env python3
"""Writes routes.json from botocore's chime-sdk-voice service model: every operation's name,
HTTP method, request URI template and success status, for the API's router.

    python3 make_routes.py > routes.json     (botocore installed)
"""

import glob
import gzip
import json
import os

import botocore

pattern = os.path.join(os.path.dirname(botocore.__file__), "data", "chime-sdk-voice", "*", "service-2.json*")
path = sorted(glob.glob(pattern))[-1]
model = json.load(gzip.open(path) if path.endswith(".gz") else open(path))
routes = [
    {"name": name, "method": op["http"]["method"], "uri": op["http"]["requestUri"],
     "code": op["http"].get("responseCode", 200)}
    for name, op in sorted(model["operations"].items())
]
print(json.dumps({"api_version": model["metadata"]["apiVersion"], "botocore": botocore.__version__,
                  "operations": routes}, indent=1))
