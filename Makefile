# Every target sets up its own virtual environment first, so each works on a fresh machine.
# torch is pinned to 2.13.0: on these machines that is the CPU wheel on disk; an unpinned torch
# pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.13.0

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,hf]'
	touch $@

# The main job (see README).
demo: setup
	$(VENV)/bin/sparsegraph compare --task listops,pathfinder --patterns full,bigbird,longformer --preset cpu --jobs 2 --out runs/demo

# The whole test suite. pytest's exit status 5 ("no tests collected") is a failure here.
test: setup
	TRITON_INTERPRET=1 $(PY) -m pytest -q -p no:cacheprovider tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) build *.egg-info
