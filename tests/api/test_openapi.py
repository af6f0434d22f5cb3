"""The OpenAPI document: served, 3.1, browsable, and shaped so that no path id can reach
the database out of range."""

from __future__ import annotations

import re

import httpx

from dozor.api.deps import MAX_ID


async def test_the_document_is_openapi_3_1_with_browsable_docs(
        client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert any(path.startswith("/api/v1/monitors") for path in spec["paths"])
    docs = await client.get("/api/docs")
    assert docs.status_code == 200 and "/api/openapi.json" in docs.text
    # Everything the page loads is ours: it works offline and behind a strict firewall.
    loaded = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert loaded and all(url.startswith(("/static/swagger/", "data:")) for url in loaded)
    for url in loaded:
        if url.startswith("/static/"):
            assert (await client.get(url)).status_code == 200, url


async def test_every_id_in_a_path_is_bounded_to_what_the_database_holds(
        client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    ids = [(path, parameter) for path, operations in spec["paths"].items()
           for operation in operations.values()
           for parameter in operation.get("parameters", [])
           if parameter["in"] == "path" and parameter["name"].endswith("_id")]
    assert ids
    for path, parameter in ids:
        schema = parameter["schema"]
        assert (schema.get("minimum"), schema.get("maximum")) == (1, MAX_ID), (path, parameter)
