"""The suite's own guards (tests/conftest.py): offline for every test, seeded global RNGs."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from tests.conftest import HubCallError


def test_the_hub_is_off_whatever_the_shell_said():
    import huggingface_hub

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    with pytest.raises(HubCallError, match="the test suite is offline"):
        huggingface_hub.hf_hub_download("sentence-transformers/all-MiniLM-L6-v2", "config.json")
    with pytest.raises(HubCallError, match="the test suite is offline"):
        huggingface_hub.snapshot_download("takala/financial_phrasebank", repo_type="dataset")


def test_transformers_cannot_download_either():
    from transformers.utils import hub

    with pytest.raises(HubCallError, match="the test suite is offline"):
        hub.hf_hub_download("sentence-transformers/all-MiniLM-L6-v2", "config.json")


@pytest.mark.parametrize("run", [1, 2])
def test_global_rngs_start_seeded_in_every_test(run):
    """The first draws are those of seed 0, whatever ran before (run 2 follows run 1's draws)."""
    import torch

    assert random.random() == random.Random(0).random()
    assert np.random.random_sample() == np.random.RandomState(0).random_sample()
    assert torch.rand(1).item() == torch.rand(1, generator=torch.Generator().manual_seed(0)).item()
