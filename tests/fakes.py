"""An in-process check kind whose outcomes a test sets: for engine tests that need exact
control over up and down. Integration tests use the real kinds against local servers."""

from __future__ import annotations

from typing import ClassVar

from dozor.checks.base import CheckConfig, CheckContext, register
from dozor.core.types import ErrorCode, Outcome


class ScriptedConfig(CheckConfig):
    key: str
    host: str | None = None

    def target_host(self) -> str | None:
        return self.host


@register
class ScriptedCheck:
    kind: ClassVar[str] = "scripted"
    Config: ClassVar[type[CheckConfig]] = ScriptedConfig
    up: ClassVar[dict[str, bool]] = {}
    runs: ClassVar[dict[str, int]] = {}

    async def run(self, config: ScriptedConfig, ctx: CheckContext) -> Outcome:
        self.runs[config.key] = self.runs.get(config.key, 0) + 1
        if self.up.get(config.key, True):
            return Outcome.up(5.0)
        return Outcome.down(ErrorCode.CONNECTION_REFUSED, "connection refused (scripted)", 1.0)
