# The two commands of the README: `make demo` and `make test`. Both set up everything they need
# on a fresh machine (a virtualenv in .venv with the project and its tools installed).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM := $(VENV)/.system
EXAMPLE := manifests/examples/shop

.PHONY: setup system lab-cluster demo test lint typecheck unit golden clean

setup: $(STAMP)

# apt packages (nftables, python3-nftables, iproute2) and the bindings linked into the venv:
# needed by the enforcer and the lab, so by `make test`; not by `make demo`.
system: $(SYSTEM)

$(SYSTEM): $(STAMP) scripts/setup-system.sh
	bash scripts/setup-system.sh $(VENV)
	touch $@

# The lab's real control plane (lab/cluster: upstream kube-apiserver, controller-manager,
# scheduler and kubectl, built from the k8s.io/kubernetes Go module, with embedded etcd). Built
# once into ~/.cache/kubefence/lab-cluster/<hash of its sources>/ and reused: about 12 minutes
# on a fresh machine (it downloads ~600 MB of Go modules), instant afterwards.
lab-cluster:
	@echo "lab control plane: $$(bash scripts/build-lab-cluster.sh)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(VENV)/bin/kubefence matrix $(EXAMPLE)
	@echo
	$(VENV)/bin/kubefence can shop/web shop/api --port 8080/TCP $(EXAMPLE)
	@echo
	@# A denied connection exits 1: that is the answer, not a failure of the demo.
	$(VENV)/bin/kubefence can shop/web db/postgres --port 5432/TCP $(EXAMPLE); \
	  test $$? -eq 1

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP) $(SYSTEM) lab-cluster
	$(PY) -m pytest

test: lint typecheck unit

# Regenerate the golden output files after an intended change of output; review the diff.
golden: $(STAMP)
	$(PY) -m pytest tests/test_golden.py tests/test_compile_golden.py --update-golden

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
