"""Test configuration shared by the whole suite."""

import os

# No GPU on the development and CI machines: Triton kernels run in its interpreter. Must be set
# before triton is imported.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
)
settings.load_profile("default")


@pytest.fixture
def one_thread():
    """One intra-op torch thread for the test: the same reduction order as the subprocesses the
    tests start, and no oversubscription of the two shared cores (tiny models ran 40x slower
    with 2 threads under load than with 1)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
