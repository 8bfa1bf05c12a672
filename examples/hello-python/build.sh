#!/usr/bin/env bash
# Builds dist/hello-python.wasm with componentize-py (from the project's venv, or PATH).
set -euo pipefail
cd "$(dirname "$0")"
componentize_py=${COMPONENTIZE_PY:-componentize-py}
mkdir -p dist
"$componentize_py" -d ../../wit -w sip-media-application componentize app -o dist/hello-python.wasm
