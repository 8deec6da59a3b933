"""Shared fixtures: every test leaves stdout as it found it (train.py tees stdout to a log file)."""

import sys

import pytest


@pytest.fixture(autouse=True)
def _restore_stdout():
    stdout = sys.stdout
    yield
    from dassl.utils import close_logger

    close_logger()
    sys.stdout = stdout
