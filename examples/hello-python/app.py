"""hello-python: the IVR menu as a WebAssembly component (componentize-py).

Build: componentize-py -d ../../wit -w sip-media-application componentize app -o dist/hello-python.wasm
"""

import json

import wit_world
from wit_world.imports import log as wit_log

import ivr

_LEVELS = {
    "debug": wit_log.Level.DEBUG,
    "info": wit_log.Level.INFO,
    "warn": wit_log.Level.WARN,
    "error": wit_log.Level.ERROR,
}


def _log(level, message):
    wit_log.log(_LEVELS.get(level, wit_log.Level.INFO), message)


class WitWorld(wit_world.WitWorld):
    def handle_event(self, event: str) -> str:
        return json.dumps(ivr.decide(json.loads(event), _log))
