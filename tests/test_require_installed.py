"""``FTBENCH_REQUIRE_INSTALLED=1`` turns a missing optional package from a skip into a failure."""

from __future__ import annotations

import json

import pytest

from .conftest import REQUIRE_INSTALLED_ENV, importorskip

MISSING = "ftbench_no_such_package"


def _outcome_of_importing_a_missing_package(monkeypatch: pytest.MonkeyPatch, value: str | None) -> BaseException:
    """The skip or failure raised (caught here, so that a wrong one fails this test instead of skipping it)."""
    if value is None:
        monkeypatch.delenv(REQUIRE_INSTALLED_ENV, raising=False)
    else:
        monkeypatch.setenv(REQUIRE_INSTALLED_ENV, value)
    try:
        importorskip(MISSING, reason="the extra has it")
    except (pytest.skip.Exception, pytest.fail.Exception) as outcome:
        return outcome
    raise AssertionError(f"importing {MISSING} neither skipped nor failed")


@pytest.mark.parametrize("value", [None, "", "0"])
def test_a_missing_package_skips_unless_required(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    outcome = _outcome_of_importing_a_missing_package(monkeypatch, value)
    assert isinstance(outcome, pytest.skip.Exception), outcome
    assert "the extra has it" in str(outcome)


def test_a_missing_package_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = _outcome_of_importing_a_missing_package(monkeypatch, "1")
    assert isinstance(outcome, pytest.fail.Exception), outcome
    assert str(outcome).startswith(f"{MISSING} is not installed ({REQUIRE_INSTALLED_ENV}=1): the extra has it")


@pytest.mark.parametrize("value", ["", "1"])
def test_an_installed_package_is_returned(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(REQUIRE_INSTALLED_ENV, value)
    assert importorskip("json", reason="stdlib") is json
