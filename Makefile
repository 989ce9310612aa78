# The two commands of the README: `make demo` (all pipelines on one machine) and `make test`.
# Each bootstraps what it needs: a virtualenv installed from the lock files, then the embedded
# services, which the runner and the tests start themselves.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-from-lock
UV_VERSION := 0.13.8

.PHONY: venv demo up test bench lint lock system-deps clean env images

$(STAMP): requirements.lock requirements-dev.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (set PYTHON=...)"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --python $(PY) requirements.lock requirements-dev.lock
	touch $(STAMP)

venv: $(STAMP)

## demo: run every DAG once on embedded parts and print a summary (ARGS="--only hello_world ...")
demo: venv
	$(PY) -m sandbox.runner demo $(ARGS)

## up: start the same stack and keep it running (web UI on http://localhost:8080, admin/admin)
up: venv
	$(PY) -m sandbox.runner up $(ARGS)

## env: write .env for docker compose with fresh secrets (refuses to overwrite an existing one)
env:
	$(PYTHON) tools/new_env.py

## images: every image docker-compose.yaml needs: pulled, or a local stand-in where no registry
## answers (tests/deploy/standins), then the project's own image built
images: venv
	$(PY) -m tests.deploy.images $(ARGS)

## test: the whole test suite (PYTEST_ARGS="-k notify" to select)
test: venv system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest --durations=25 $(PYTEST_ARGS)

## bench: the benchmarks, printed as tables of ratios against their baselines
bench: venv
	PYTHONPATH=plugins:. $(PY) -m bench $(ARGS)

lint: venv
	$(PY) -m ruff check .

## lock: re-resolve requirements-airflow.txt / requirements-dev.txt into the two lock files
lock:
	$(VENV)/bin/uv pip compile requirements-airflow.txt --python-version 3.11 --no-header -o requirements.lock
	$(VENV)/bin/uv pip compile requirements-dev.txt --python-version 3.11 --no-header -o requirements-dev.lock

## system-deps: Debian packages the tests use, installed when missing (as root, with apt-get):
## chromium (web UI test), redis-server (CeleryExecutor test), a Java runtime (Spark), PostGIS for
## each Debian Postgres found (the police staging test builds all 97 real tables), and Docker's
## engine with debootstrap (the deployment test; stand-in images start from a debootstrapped Debian)
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	command -v dockerd >/dev/null 2>&1 || missing="$$missing docker.io"; \
	command -v debootstrap >/dev/null 2>&1 || missing="$$missing debootstrap"; \
	for major in $$(ls /usr/lib/postgresql 2>/dev/null); do \
	  [ -e /usr/share/postgresql/$$major/extension/postgis.control ] || missing="$$missing postgresql-$$major-postgis-3"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing:$$missing (install them with your package manager; the tests that need them fail)"; fi; \
	fi

clean:
	rm -rf .local data logs/*.log test-artifacts
