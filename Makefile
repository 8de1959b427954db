# vaeviz: `make demo` and `make test` do all set-up on a fresh machine (Python >= 3.10 and make).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# .[render] is what running vaeviz needs (demo, render, compare); .[dev] adds the test and bench tools.
RENDER_STAMP := $(VENV)/.installed-render
DEV_STAMP    := $(VENV)/.installed-dev
RUN    ?=
EVERY  ?=
DEMO_EPOCHS ?= 20
DEMO_BETA   ?= 2
DEMO_TRAIN  ?= --data shapes --image-size 32 --latent-dim 8 --n-images 3072 --n-eval 2000 --xla
DEMO_VIEWS  ?= recon,walk,kl,manifold,samples,interp,traversal,clusters,metrics
DEMO_RENDER := checkpoints/demo --out outputs/demo --views $(DEMO_VIEWS) --scale 2
DEMO_SHOT   := checkpoints/demo --port 0 --screenshot outputs/demo/explorer.png
BESIDE      := nice -n 10

.PHONY: install install-dev browser test test-fast demo render serve compare bench clean

install: $(RENDER_STAMP)
install-dev: $(DEV_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Each extra installs once; re-running is a no-op until pyproject.toml changes.
$(RENDER_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[render]'
	@touch $@

# The dev extra holds the render extra, so it brings both up to date (make demo after make test is a no-op).
$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(RENDER_STAMP)

test: install-dev browser
	$(PY) -m pytest -q

# The report test drives Debian's headless Chromium; install it where missing and possible.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the report test (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	      || echo "could not install chromium: the browser test will be skipped"; \
	  else echo "no chromium and no root apt-get: the browser test will be skipped"; fi; }

test-fast: install-dev
	$(PY) -m pytest -q -m "not slow"

# Trains the reference VAE while a second process renders its checkpoints as they appear (--follow), so
# outputs/demo/index.html fills in during training; the explorer starts beside them and takes its screenshot of the
# last epoch once training finishes (serve --wait), TensorFlow already loaded. Both run at nice 10:
# at equal priority they slowed training by 14 s; at idle priority (SCHED_IDLE) the follower fell 7 checkpoints
# behind and its last pass took 18 s after training. Prints its own wall time at the end. A second `make demo` only
# re-renders (rm -rf checkpoints/demo to train again).
demo: install
	@start=$$(date +%s); \
	echo "Open outputs/demo/index.html: it fills in as the epochs finish (reload it)."; \
	if grep -qs '"finished": true' checkpoints/demo/run.json; then \
	  echo "checkpoints/demo is already trained: rendering only (rm -rf checkpoints/demo to train again)"; \
	  $(PY) -m pipeline.render $(DEMO_RENDER) --quiet || exit 1; \
	else \
	  rm -rf checkpoints/demo; \
	  $(BESIDE) $(PY) -m pipeline.render $(DEMO_RENDER) --follow --poll 1 --idle-timeout 120 --jobs 1 --quiet & follower=$$!; \
	  if command -v chromium >/dev/null 2>&1; then $(BESIDE) $(PY) -m pipeline.serve $(DEMO_SHOT) --wait & explorer=$$!; fi; \
	  $(PY) -m pipeline.train $(DEMO_TRAIN) --run checkpoints/demo --epochs $(DEMO_EPOCHS) --beta $(DEMO_BETA) 2>&1 | cat; \
	  test -f checkpoints/demo/run.json && grep -qs '"finished": true' checkpoints/demo/run.json \
	    || { kill $$follower $$explorer 2>/dev/null; echo "training failed: see above"; exit 1; }; \
	fi; \
	if [ -z "$$explorer" ] && command -v chromium >/dev/null 2>&1; then \
	  $(PY) -m pipeline.serve $(DEMO_SHOT) & explorer=$$!; fi; \
	if [ -n "$$follower" ]; then wait $$follower || exit 1; fi; \
	if command -v chromium >/dev/null 2>&1; then \
	  chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
	    --disable-sync --no-first-run --user-data-dir=$$(mktemp -d) --hide-scrollbars --window-size=1000,1500 \
	    --screenshot=outputs/demo/report.png "file://$(CURDIR)/outputs/demo/index.html" >/dev/null 2>&1 \
	  && echo "screenshot of the report: outputs/demo/report.png"; fi; \
	if [ -n "$$explorer" ]; then wait $$explorer; fi; \
	echo "Look at outputs/demo/index.html (the report), or the files beside it: inputs.png, recon.gif, walk.gif,"; \
	echo "kl.png, manifold.gif, samples.gif, interp.gif, traversal.gif, clusters.gif, metrics.png, one PNG per epoch."; \
	echo "make demo took $$(( $$(date +%s) - start )) s"

# Without RUN: every run directory under checkpoints/, each into outputs/<run name>.
render: install
	$(PY) -m pipeline.render $(RUN) $(if $(EVERY),--every $(EVERY))

# The explorer of one run: drag each latent and the epoch in the browser, e.g. make serve RUN=checkpoints/demo
serve: install
	@test -n "$(RUN)" || { echo "usage: make serve RUN=checkpoints/NAME [PORT=8765]"; exit 2; }
	$(PY) -m pipeline.serve $(RUN) $(if $(PORT),--port $(PORT))

# One page over several runs, e.g. make compare RUNS="checkpoints/beta1 checkpoints/beta4"
compare: install
	@test -n "$(RUNS)" || { echo "usage: make compare RUNS=\"checkpoints/a checkpoints/b\" [OUT=outputs/compare]"; exit 2; }
	$(PY) -m pipeline.compare $(RUNS) --out $(or $(OUT),outputs/compare) --views recon,walk,kl,clusters,metrics

bench: install-dev
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis outputs/demo checkpoints/demo
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
