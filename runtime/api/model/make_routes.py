#!/usr/bin/env python3
"""Writes routes.json from botocore's chime-sdk-voice and chime-sdk-meetings service models:
every operation's name, HTTP method, request URI template, success status and service, for
the API's router. The tag operations have the same name, method and URI in both models; they
are listed once (the tags module finds the resource by its ARN).

    python3 make_routes.py > routes.json     (botocore installed)
"""

import glob
import gzip
import json
import os

import botocore


def load(service):
    pattern = os.path.join(os.path.dirname(botocore.__file__), "data", service, "*", "service-2.json*")
    path = sorted(glob.glob(pattern))[-1]
    return json.load(gzip.open(path) if path.endswith(".gz") else open(path))


routes = []
seen = set()
versions = {}
for service in ("chime-sdk-voice", "chime-sdk-meetings"):
    model = load(service)
    versions[service] = model["metadata"]["apiVersion"]
    for name, op in sorted(model["operations"].items()):
        key = (name, op["http"]["method"], op["http"]["requestUri"])
        if key in seen:
            continue
        seen.add(key)
        routes.append({"name": name, "method": op["http"]["method"], "uri": op["http"]["requestUri"],
                       "code": op["http"].get("responseCode", 200), "service": service})
print(json.dumps({"api_versions": versions, "botocore": botocore.__version__,
                  "operations": routes}, indent=1))
