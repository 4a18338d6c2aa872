"""Shared pytest configuration: quiet Warp, CPU device, deterministic seeds."""

import os

import numpy as np
import pytest

os.environ.setdefault("WARP_CACHE_PATH", os.path.join(os.path.expanduser("~"), ".cache", "warp"))


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(1234)
    yield


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test, as the reconstructor runs it (small tensors, no intra-op threads)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_configure(config):
    try:
        import warp as wp

        wp.config.log_level = wp.LOG_WARNING
    except ImportError:  # pragma: no cover - warp is a hard dependency
        pass
