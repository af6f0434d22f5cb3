"""The probe's result buffer: results survive a restart, go oldest first, leave only once
acknowledged, and a full buffer drops the oldest and counts them."""

from __future__ import annotations

from pathlib import Path

from dozor.probe.buffer import ResultBuffer
from dozor.probe.wire import ProbeResult


def result(n: int) -> ProbeResult:
    return ProbeResult(monitor_id=1, at_ms=1_000 * n, ok=n % 2 == 0, latency_ms=float(n),
                       error=None if n % 2 == 0 else 3, message=None if n % 2 == 0 else "no")


async def test_results_survive_a_restart_and_leave_once_acknowledged(tmp_path: Path) -> None:
    buffer = ResultBuffer(tmp_path / "probe" / "outbox.db")
    await buffer.open()
    await buffer.add([result(n) for n in range(5)])
    first = await buffer.oldest(3)
    assert [r for _, r in first] == [result(0), result(1), result(2)]
    await buffer.close()  # the probe stops before the server answered

    again = ResultBuffer(tmp_path / "probe" / "outbox.db")
    await again.open()
    assert again.size == 5
    assert await again.oldest(3) == first  # the same batch goes again: nothing lost
    await again.acknowledge(first[-1][0])
    assert again.size == 2
    await again.add([result(5)])
    assert [r.at_ms for _, r in await again.oldest(10)] == [3_000, 4_000, 5_000]
    seqs = [seq for seq, _ in await again.oldest(10)]
    assert seqs == sorted(seqs) and seqs[0] > first[-1][0]
    await again.close()


async def test_a_full_buffer_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    buffer = ResultBuffer(tmp_path / "outbox.db", max_results=4)
    await buffer.open()
    await buffer.add([result(n) for n in range(3)])
    await buffer.add([result(n) for n in range(3, 6)])
    assert buffer.size == 4 and buffer.dropped == 2
    assert [r.at_ms for _, r in await buffer.oldest(10)] == [2_000, 3_000, 4_000, 5_000]
    await buffer.close()
    reopened = ResultBuffer(tmp_path / "outbox.db", max_results=4)
    await reopened.open()
    assert (reopened.size, reopened.dropped) == (4, 2)
    await reopened.close()


def test_a_result_keeps_its_outcome_on_the_way() -> None:
    from dozor.core.types import ErrorCode, Outcome

    outcome = Outcome.down(ErrorCode.CONNECTION_REFUSED, "refused", latency_ms=3.5)
    sent = ProbeResult.of(7, 1_000, outcome)
    assert ProbeResult.model_validate_json(sent.model_dump_json()).outcome() == outcome
