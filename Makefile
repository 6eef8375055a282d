# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv when missing and
# installs the project with the extras it needs (again whenever pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test test-unit bench examples clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-%: pyproject.toml | $(PY)
	$(PIP) install -e ".[$*]"
	@touch $@

demo: $(VENV)/.stamp-broker
	$(PY) -m trainsentry.consumers.cli demo

test: $(VENV)/.stamp-test,examples
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(VENV)/.stamp-test,examples
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

bench: $(VENV)/.stamp-test,examples
	$(PY) -m benchmarks

examples: $(VENV)/.stamp-test,examples
	@echo "run one with: $(PY) examples/train_digits.py --variant healthy"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
