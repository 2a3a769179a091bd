"""Shared fixtures. Tests keep torch to few threads: CI has 2 cores and may run workers in parallel."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("MOBILEBONE_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
