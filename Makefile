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
# Streaming: Spark's Kafka connector and spark-avro (4.0.0: 4.0.1's token-provider POM is not
# served), and Kafka itself for the test broker (KRaft, run on the machine's Java by granero.streaming.local_broker for tests and the demo).
STREAM_JARS := org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0 org.apache.spark:spark-avro_2.13:4.0.0
KAFKA := org.apache.kafka:kafka_2.13:4.1.1
HAS_STREAM_JARS := from granero.offline.spark_session import STREAM_JARS as s, maven_jar as j, maven_repository as m; \
	raise SystemExit(not all(j(m(), c).is_file() for c in s))
HAS_KAFKA := from granero.offline.spark_session import maven_jar as j, maven_repository as m; \
	raise SystemExit(not j(m(), "$(KAFKA)").is_file())

.PHONY: setup helm demo test bench lint protos clean

# --no-compile: modules are byte-compiled on first import, not all of pyspark's up front; the
# Delta jars are fetched only when ~/.m2 lacks them (Maven takes minutes on a busy machine).
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml protos/build.py $(wildcard protos/granero/*/*/*.proto)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e ".[dev]"
	$(BIN)/python -c '$(HAS_DELTA_JARS)' || mvn -q dependency:get -Dartifact=$(DELTA) >/dev/null
	$(BIN)/python -c '$(HAS_STREAM_JARS)' || for a in $(STREAM_JARS); do mvn -q dependency:get -Dartifact=$$a >/dev/null; done
	$(BIN)/python -c '$(HAS_KAFKA)' || mvn -q dependency:get -Dartifact=$(KAFKA) >/dev/null
	touch $@

helm:
	bash helm/install-helm.sh >/dev/null

demo: setup
	bash feature_repo/scripts/demo.sh

# The suite runs on TEST_WORKERS pytest-xdist workers (each with its own redis-server and Spark
# session); a unit of work is a test file, the costliest first (tests/conftest.py). TEST_WORKERS=0
# runs it in one process.
TEST_WORKERS ?= 2
test: setup helm
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 \
		-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: setup
	bash bench/run.sh $(ARGS)

lint: setup
	$(BIN)/ruff check src tests spark_jobs bench feature_repo

protos: setup
	$(BIN)/python -c "import sys; sys.path.insert(0, 'protos'); from pathlib import Path; from build import generate_protos; generate_protos(Path('.'))"

clean:
	rm -rf feature_repo/data .pytest_cache
