#!/bin/sh
# Builds Kithost's runtime virtualenv at VENV from the source tree at SRC: the dependencies
# pinned in constraints.txt, no dev tools, and the project itself installed editable, since
# the app finds alembic.ini, migrations/ and the built front ends beside its package.
# The Dockerfile builds the image's virtualenv with it, and tests/deploy a throwaway one.
set -eu
src=$1
venv=$2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -c "$src/constraints.txt" -e "$src"
"$venv/bin/kithost" --help >/dev/null
