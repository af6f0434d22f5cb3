"""NUL characters are refused the same on SQLite and PostgreSQL (whose text cannot hold
them), naming the field, and nothing is stored."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Person

TCP = {"name": "api", "kind": "tcp", "host": "127.0.0.1", "port": 9}


@pytest.mark.parametrize(("body", "field"), [
    (TCP | {"name": "a\x00b"}, "name"),
    (TCP | {"tags": ["web", "\x00"]}, "tags.1"),
    (TCP | {"send": "hello\x00"}, "send"),
])
async def test_a_nul_in_a_body_names_its_field(client: httpx.AsyncClient, owner: Person,
                                               body: dict[str, object], field: str) -> None:
    answer = await client.post("/api/v1/monitors", json=body, headers=owner.headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [{"field": field, "message":
                                        "must not contain the NUL character (U+0000)"}]
    assert (await client.get("/api/v1/monitors", headers=owner.headers)).json()["items"] == []


async def test_a_nul_in_a_query_or_path_names_its_parameter(client: httpx.AsyncClient,
                                                            owner: Person) -> None:
    listed = await client.get("/api/v1/monitors", params={"tag": "w\x00"},
                              headers=owner.headers)
    assert listed.status_code == 422 and listed.json()["errors"][0]["field"] == "tag"
    page = await client.get("/api/v1/public/status-pages/a%00b")
    assert page.status_code == 422 and page.json()["errors"][0]["field"] == "slug"


async def test_a_nul_in_applied_yaml_names_file_line_and_field(client: httpx.AsyncClient,
                                                               owner: Person) -> None:
    document = 'monitors:\n  - name: "api\\0"\n    kind: tcp\n    host: 127.0.0.1\n    port: 9\n'
    answer = await client.post("/api/v1/monitors/apply", content=document, headers=owner.headers
                               | {"Content-Type": "application/yaml"})
    assert answer.status_code == 422
    assert "<text>:2" in answer.text and "monitors[0].name" in answer.text, answer.text
    assert (await client.get("/api/v1/monitors", headers=owner.headers)).json()["items"] == []


async def test_text_without_nul_passes_untouched(client: httpx.AsyncClient,
                                                 owner: Person) -> None:
    answer = await client.post("/api/v1/monitors", json=TCP | {"name": "zażółć \\u0000"},
                               headers=owner.headers)
    assert answer.status_code == 201 and answer.json()["name"] == "zażółć \\u0000"
