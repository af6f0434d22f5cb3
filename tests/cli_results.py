"""What a CLI test asserts about a command's run: it worked (its output), or it failed."""

from __future__ import annotations

from click.testing import Result


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def fails(result: Result) -> str:
    assert result.exit_code != 0, result.output
    return result.output
