"""Tiny EmpathicInsight-Face folders in the real on-disk layout (built once per session, offline)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SigLIP2 vision-only backbone + 40 heads (authors' `layers.N` keys) + neutral means."""
    from annotation.scoring.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-siglip2"), kind="siglip2-vision", neutral_means=True)


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture, other weights: a different model version."""
    from annotation.scoring.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-siglip2-b"), kind="siglip2-vision", seed=1)
