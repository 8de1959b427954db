# vaeviz: `make demo` and `make test` do all set-up on a fresh machine (Python >= 3.10 and make).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN    ?=
EVERY  ?=
DEMO_EPOCHS ?= 20

.PHONY: install test test-fast demo render bench clean

install: $(STAMP)

# Re-running is a no-op until pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

demo: install
	$(PY) -m pipeline.train --data shapes --run checkpoints/demo --epochs $(DEMO_EPOCHS)
	$(PY) -m pipeline.render checkpoints/demo --out outputs/demo
	@echo "Look at outputs/demo/ (inputs.png, recon.gif, walk.gif, recon/ and walk/ frames)."

render: install
	@test -n "$(RUN)" || { echo "usage: make render RUN=checkpoints/NAME [EVERY=n]"; exit 2; }
	$(PY) -m pipeline.render $(RUN) $(if $(EVERY),--every $(EVERY))

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis outputs/demo checkpoints/demo
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
