# The two commands of the quickstart:
#   make demo   sets up and runs the example end to end on the embedded defaults
#   make test   sets up and runs the whole test suite
# Both create or reuse .venv, install Granero with its dev tools, and fetch the Delta Lake jars
# into the local Maven cache (~/.m2), from which Spark sessions load them directly (no resolver
# pass, no network). `make test` also builds the pinned helm binary (from the Go module proxy,
# cached under ~/.cache/granero) for the chart checks; the demo does not need it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DELTA := io.delta:delta-spark_2.13:4.0.1
HAS_DELTA_JARS := from granero.offline.spark_session import delta_jars_conf as c, maven_repository as m; \
	raise SystemExit("spark.jars" not in c(m()))

.PHONY: setup helm demo test bench lint protos clean

# --no-compile: modules are byte-compiled on first import, not all of pyspark's up front; the
# Delta jars are fetched only when ~/.m2 lacks them (Maven takes minutes on a busy machine).
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml protos/build.py $(wildcard protos/granero/*/*/*.proto)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e ".[dev]"
	$(BIN)/python -c '$(HAS_DELTA_JARS)' || mvn -q dependency:get -Dartifact=$(DELTA) >/dev/null
	touch $@

helm:
	bash helm/install-helm.sh >/dev/null

demo: setup
	bash feature_repo/scripts/demo.sh

test: setup helm
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=25

bench: setup
	bash bench/run.sh $(ARGS)

lint: setup
	$(BIN)/ruff check src tests spark_jobs bench feature_repo

protos: setup
	$(BIN)/python -c "import sys; sys.path.insert(0, 'protos'); from pathlib import Path; from build import generate_protos; generate_protos(Path('.'))"

clean:
	rm -rf feature_repo/data .pytest_cache
