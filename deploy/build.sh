#!/usr/bin/env bash
# Build a printsrv installation into PREFIX (default /opt/printsrv): the steps the
# Containerfile runs, as a plain script, so they can be tested where no container engine
# runs. Needs the Debian packages of scripts/runtime-packages.txt and a Python >= 3.11.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-/opt/printsrv}
python=${PYTHON:-python3}
mkdir -p "$prefix"
"$python" -m venv "$prefix/.venv"
"$prefix/.venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$prefix/.venv/bin/python" -m pip install -q --disable-pip-version-check "$src"
"$prefix/.venv/bin/printsrv" --version
