from __future__ import annotations

import pytest

from vtr.progress import PROGRESS_ENV, show_progress


@pytest.mark.parametrize(
    ("env", "asked", "expected"),
    [
        (None, True, True),
        (None, False, False),
        ("1", True, True),
        ("0", True, False),
        ("false", True, False),
        (" No ", True, False),
        ("0", False, False),
    ],
)
def test_show_progress_follows_the_caller_and_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: str | None, asked: bool, expected: bool
) -> None:
    if env is None:
        monkeypatch.delenv(PROGRESS_ENV, raising=False)
    else:
        monkeypatch.setenv(PROGRESS_ENV, env)
    assert show_progress(asked) is expected
