# CFD Mesh: `make run` starts the whole mesh, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB_SOURCES := $(shell find web/src web/index.html web/package.json web/package-lock.json web/vite.config.ts web/tsconfig.json web/tsconfig.node.json -type f 2>/dev/null)
PY_PACKAGES := launcher mesh engine_svc market_svc account_svc edge envoy_front maker tools bench tests


.PHONY: run test check lint imports typecheck proto proto-check web web-test docs bench clean

run: $(STAMP) web/dist/index.html docs build/mypyc/core.sha256
	$(BIN)/cfd up

# The engine runs its core compiled with mypyc when this build matches the sources; when the
# build fails, it runs the same core interpreted.
build/mypyc/core.sha256: $(STAMP) $(shell find engine_svc/core -name '*.py') bench/mypyc_build.py
	@echo "compiling the engine core with mypyc (once per change of engine_svc/core)"
	@$(BIN)/python bench/mypyc_build.py >/dev/null || echo "make: mypyc could not compile the engine core; the engine runs it interpreted"

test: $(STAMP) web/dist/index.html tests/oidc/node_modules/.package-lock.json
	scripts/install-system-deps.sh
	$(MAKE) --no-print-directory check web-test docs
	scripts/with-test-services.sh scripts/pytest.sh

check: lint imports typecheck proto-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/buf lint

# The dependency rule (contracts in pyproject.toml): a forbidden import fails the build.
imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy $(foreach p,$(PY_PACKAGES),$(wildcard $(p)))

proto: $(STAMP)
	$(BIN)/python tools/protogen.py

proto-check: $(STAMP)
	$(BIN)/python tools/protogen.py --check

web/dist/index.html: $(WEB_SOURCES)
	@if [ -f web/package.json ]; then \
		command -v npm >/dev/null || scripts/install-system-deps.sh; \
		cd web && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } && npm run build; \
	fi

web: web/dist/index.html

# The local OpenID provider (the npm package oidc-provider) the sign-in tests run.
tests/oidc/node_modules/.package-lock.json: tests/oidc/package.json tests/oidc/package-lock.json
	command -v npm >/dev/null || scripts/install-system-deps.sh
	cd tests/oidc && npm ci --no-audit --no-fund

# The documentation site, into build/docs-site (mkdocs.yml), where the edge serves it at
# /docs/site/; strict, so a broken link or anchor fails (--quiet would hide the warnings that
# strict counts). The API reference is generated anew each time.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

web-test: web/dist/index.html
	@if [ -f web/package.json ]; then cd web && npm test; fi

# Every script under bench/ with a __main__ block is a benchmark, except the mypyc build step
# (core_bench.py runs it); the others are helpers. The HTTP benchmarks need wrk; without it
# (and without the rights to install it) they say so and are skipped.
bench: $(STAMP)
	@scripts/install-system-deps.sh --bench || echo "make bench: wrk is missing; the wrk benchmarks are skipped"
	@for b in $$(grep -l '^if __name__ == "__main__":' bench/*.py | grep -v mypyc_build); do \
		echo "== $$b"; $(BIN)/python $$b || exit 1; \
	done

clean:
	rm -rf $(VENV) build web/dist web/node_modules .mypy_cache .ruff_cache .pytest_cache
