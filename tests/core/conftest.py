"""Fixtures of tests/core: the shipped model, loaded once per module that asks for it."""

import pytest


@pytest.fixture(scope="module")
def shipped_classifier():
    """The model in models/, or a skip that says why where it is missing."""
    from core.classifier import FractureClassifier

    try:
        return FractureClassifier.load()
    except FileNotFoundError as missing:
        pytest.skip(f"no shipped model: {missing}")
