"""A server for the ping benchmark, under uvicorn as `dozor serve` runs it (uvloop, one
process), in one of three shapes:

- ``bare``: a raw ASGI callable answering 200 "OK" to any request: uvicorn's own cost;
- ``fastapi``: a FastAPI app with one trivial ``/ping/{token}`` route: the framework's;
- ``dozor``: the real Dozor app on a fresh SQLite database in DATA_DIR holding MONITORS
  heartbeat monitors whose push tokens are ``bench-000000``, ``bench-000001``, ...

Access logging is off in all three (an operator's choice, the same for each).

    python -m bench.ping_server bare|fastapi|dozor PORT [DATA_DIR MONITORS]
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from sqlalchemy import insert

from bench.ping_load import token

HOUR_MS = 3_600_000


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": b"OK"})


def trivial_fastapi() -> FastAPI:
    app = FastAPI()

    @app.get("/ping/{token}", response_class=PlainTextResponse)
    async def ping(token: str) -> PlainTextResponse:
        return PlainTextResponse("OK")

    return app


def dozor(data_dir: Path, monitors: int) -> Any:
    from dozor.app import create_app
    from dozor.privacy import keys
    from dozor.settings import Settings
    from dozor.store import tables as t
    from dozor.store.db import create_engine
    from dozor.store.migrate import upgrade

    keys.use(Settings.model_validate({"data_dir": data_dir}))  # migrations seal with it
    upgrade(f"sqlite:///{data_dir / 'dozor.db'}")
    now = datetime.now(UTC)
    # An hour's interval: the scheduled checks of the monitors themselves (a few a second
    # for 10,000) stay out of the CPU the pings are charged with.
    rows = [{"org_id": 1, "name": f"job {i}", "kind": "heartbeat", "config": {"period": "1h"},
             "interval_ms": HOUR_MS, "retry_interval_ms": HOUR_MS, "timeout_ms": 10_000,
             "confirm_after": 1, "recover_after": 1, "tags": [], "paused": False,
             "revision": 1, "created_at": now, "updated_at": now, "push_token": token(i)}
            for i in range(monitors)]

    async def write() -> None:
        database = create_engine(f"sqlite+aiosqlite:///{data_dir / 'dozor.db'}")
        async with database.begin() as connection:
            await connection.execute(insert(t.monitors), rows)
            await connection.execute(insert(t.monitor_state), [
                {"monitor_id": i + 1, "state": "unknown"} for i in range(monitors)])
        await database.dispose()

    asyncio.run(write())
    return create_app(Settings.model_validate({"data_dir": data_dir, "log_level": "warning"}))


def main() -> None:
    shape, port = sys.argv[1], int(sys.argv[2])
    if shape == "dozor":
        app: Any = dozor(Path(sys.argv[3]), int(sys.argv[4]))
    else:
        app = {"bare": bare, "fastapi": trivial_fastapi()}[shape]
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", log_level="warning",
                access_log=False, lifespan="on" if shape == "dozor" else "off",
                backlog=4096)


if __name__ == "__main__":
    main()
