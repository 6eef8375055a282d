# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv when missing and
# installs the project with the extras it needs (again whenever pyproject.toml or the set of
# modules changes: the strict editable install links each module file under build/).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# The list of module files, rewritten only when a module is added or removed.
MODULES := $(sort $(wildcard protocol/*.py producers/*.py consumers/*.py consumers/*/*.py rules/*.py \
                            consumers/ui/static/* consumers/ui/static/vendor/*/*))
$(shell mkdir -p $(VENV) && (echo '$(MODULES)' | cmp -s - $(VENV)/.modules || echo '$(MODULES)' > $(VENV)/.modules))

.PHONY: demo test test-unit lint bench examples clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-%: pyproject.toml $(VENV)/.modules | $(PY)
	$(PIP) install -e ".[$*]" --config-settings editable_mode=strict
	@touch $@

demo: $(VENV)/.stamp-broker
	$(PY) -m trainsentry.consumers.cli demo

# The browser tests drive Debian's chromium: installed here when missing (as root, e.g. on CI).
test: $(VENV)/.stamp-test,examples
	sh tests/browser/ensure_chromium.sh
	$(PY) -m pytest $(PYTEST_ARGS)

# Neither a broker nor PyTorch: the pure parts (protocol, rules, engine, commands on files).
test-unit: $(VENV)/.stamp-test
	$(PY) -m pytest -m "not integration and not torch" $(PYTEST_ARGS)

lint: $(VENV)/.stamp-test
	$(PY) -m ruff check .

bench: $(VENV)/.stamp-test,examples
	$(PY) -m benchmarks

examples: $(VENV)/.stamp-test,examples
	@echo "run one with: $(PY) examples/train_digits.py --variant healthy"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
