#!/bin/sh
# Builds Kithost's runtime virtualenv at VENV from the source tree at SRC: the dependencies
# locked in requirements.lock (each checked against its hashes; no dev tools), then the
# project itself, built without fetching anything and installed editable, since the app
# finds alembic.ini, migrations/ and the built front ends beside its package.
# The Dockerfile builds the image's virtualenv with it, and tests/deploy a throwaway one.
set -eu
src=$1
venv=$2
python3 -m venv "$venv"
pip() { "$venv/bin/pip" --quiet --disable-pip-version-check "$@"; }
pip install --require-hashes -r "$src/requirements.lock"
pip install --no-deps --no-build-isolation -e "$src"
"$venv/bin/kithost" --help >/dev/null
