# Every target sets up its own virtual environment first, so each works on a fresh machine.
# torch is pinned to 2.13.0: on these machines that is the CPU wheel on disk; an unpinned torch
# pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.13.0

.PHONY: setup demo test test-gpu clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,hf]'
	touch $@

# The main job (see README): five graphs on the two-needles diagnostic (2 seeds) and on ListOps
# at 512-1,022 tokens (1 seed: the 20-minute budget), in one comparison.
demo: setup
	$(VENV)/bin/sparsegraph compare --task needles,listops --patterns full,bigbird,longformer,window_only,erdos_renyi_blocks --preset cpu --seeds needles=2,listops=1 --jobs 2 --out runs/demo

# The whole test suite. pytest's exit status 5 ("no tests collected") is a failure here. -P keeps
# the current directory off sys.path: the installed package is what is tested, and this
# repository's top-level kernels/ cannot shadow the PyPI package of that name.
test: setup
	TRITON_INTERPRET=1 $(PY) -P -m pytest -q -p no:cacheprovider tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# On a machine with a CUDA GPU: the Triton kernels compiled (not interpreted) and checked against
# the float64 reference on CUDA tensors, forward and gradients, every dtype. Install the CUDA torch
# build there, e.g. `make test-gpu TORCH=torch` (an unpinned torch from PyPI is a CUDA build).
test-gpu: setup
	@$(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'make test-gpu: no CUDA GPU visible to torch ' + torch.__version__ + '; install a CUDA build (make test-gpu TORCH=torch)')"
	TRITON_INTERPRET=0 $(PY) -P -m pytest -q -p no:cacheprovider tests/test_triton_backend.py; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) build *.egg-info
