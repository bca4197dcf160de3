# The two commands README.md opens with:
#   make serve   runs openduck (Flight SQL on grpc://127.0.0.1:7878, data in ./openduck-data)
#   make test    runs every test (Rust unit and integration tests, then the Python end-to-end tests)
# Both install what they need first. `make bench` runs the benchmarks (`make bench-tpch`
# only the distributed TPC-H one).

# One build directory outside the clone, shared by every checkout and by CI:
# a cold build (DuckDB above all) takes over half an hour.
CARGO_TARGET_DIR ?= $(HOME)/.cache/openduck/target
export CARGO_TARGET_DIR

VENV := .venv
PYTHON := $(VENV)/bin/python
OPENDUCK_BIN := $(CARGO_TARGET_DIR)/debug/openduck
OPENDUCK_EXTENSION := $(CARGO_TARGET_DIR)/extension/openduck.duckdb_extension
OPENDUCK_WHEEL = $(wildcard $(CARGO_TARGET_DIR)/wheels/openduck-*.whl)
SERVE_ARGS ?=

.PHONY: deps deps-test lint serve test test-rust test-python build extension wheel bench bench-tpch bench-storage bench-load bench-extension bench-dual bench-single bench-parts python-env

serve: deps
	cargo run --bin openduck -- serve $(SERVE_ARGS)

test: lint test-rust test-python

# Format and lints: the tree is rustfmt-clean and clippy-clean with -D warnings.
lint: deps-test
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# System packages (protoc, etcd, ...), installed from Debian's when missing.
deps:
	scripts/install-deps serve

deps-test:
	scripts/install-deps test

# The workspace, then the DuckDB extension (extension/), linked from what cargo built.
build: deps-test
	cargo build --workspace --all-targets
	scripts/build-extension

extension: build

# The Python package (clients/python) as a wheel that ships the extension.
wheel: build python-env
	PYTHON=$(PYTHON) scripts/build-wheel

test-rust: build
	cargo test --workspace

test-python: build python-env wheel
	OPENDUCK_BIN=$(OPENDUCK_BIN) OPENDUCK_EXTENSION=$(OPENDUCK_EXTENSION) OPENDUCK_WHEEL=$(OPENDUCK_WHEEL) $(PYTHON) -m pytest tests/python -q -p no:cacheprovider

bench: build python-env
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/stream_throughput.py
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/ingest_throughput.py
	OPENDUCK_BIN=$(OPENDUCK_BIN) OPENDUCK_EXTENSION=$(OPENDUCK_EXTENSION) $(PYTHON) benches/extension_scan.py
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/tpch_single.py --scale 1
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/tpch_distributed.py --scale 1
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/tpch_distributed.py --scale 1 --placement lineitem-alone
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/storage.py
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/load.py
	OPENDUCK_BIN=$(OPENDUCK_BIN) OPENDUCK_EXTENSION=$(OPENDUCK_EXTENSION) $(PYTHON) benches/dual_execution.py --scale 1
	OPENDUCK_BIN=$(OPENDUCK_BIN) OPENDUCK_EXTENSION=$(OPENDUCK_EXTENSION) $(PYTHON) benches/union_parts.py

# A UNION ALL across two executors (10M rows) in one endpoint and in parts, against embedded DuckDB (needs etcd).
bench-parts: build python-env
	OPENDUCK_BIN=$(OPENDUCK_BIN) OPENDUCK_EXTENSION=$(OPENDUCK_EXTENSION) $(PYTHON) benches/union_parts.py

# Differential storage: bytes uploaded against bytes changed, clone times, replica catch-up.
bench-storage: build python-env
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/storage.py

# 64 clients reading and writing for 30 s, against one server and against a cluster
# (a coordinator, a writer, two replicas): statements/s, latency, memory.
bench-load: build python-env
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/load.py
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/load.py --shape cluster

# The DuckDB extension's scans (10M rows) against the ADBC driver and embedded DuckDB.
bench-extension: build python-env
	OPENDUCK_BIN=$(OPENDUCK_BIN) OPENDUCK_EXTENSION=$(OPENDUCK_EXTENSION) $(PYTHON) benches/extension_scan.py

# TPC-H SF1 split between a user's DuckDB and the service: dual execution against scans and embedded DuckDB.
bench-dual: build python-env
	OPENDUCK_BIN=$(OPENDUCK_BIN) OPENDUCK_EXTENSION=$(OPENDUCK_EXTENSION) $(PYTHON) benches/dual_execution.py --scale 1

# TPC-H SF1 on one `openduck serve` through ADBC against one embedded DuckDB, with where the time goes.
bench-single: build python-env
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/tpch_single.py --scale 1

# TPC-H SF1 over three executors against one embedded DuckDB (needs etcd).
bench-tpch: build python-env
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/tpch_distributed.py --scale 1
	OPENDUCK_BIN=$(OPENDUCK_BIN) $(PYTHON) benches/tpch_distributed.py --scale 1 --placement lineitem-alone

python-env: $(VENV)/.installed

$(VENV)/.installed: tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r tests/python/requirements.txt
	touch $@
