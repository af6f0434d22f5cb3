"""The rule that confirms an outage across locations: ``confirm-locations`` in YAML and
over the API, read back as written, refused with the field named when it cannot hold."""

from __future__ import annotations

import httpx
import pytest

from dozor.config.specs import SpecError, parse_monitor
from dozor.config.yamlfile import ConfigFileError, dump, load_text
from tests.api.conftest import Person

YAML = """monitors:
  - name: shop
    kind: tcp
    host: shop.example.com
    port: 443
    locations: [local, fra, waw]
    confirm-locations: all
"""
SHOP = {"name": "shop", "kind": "tcp", "host": "shop.example.com", "port": 443}


@pytest.mark.parametrize("rule", ["all", 1, 3])
def test_the_rule_reads_back_from_yaml_as_written(rule: object) -> None:
    document = load_text(YAML.replace("confirm-locations: all", f"confirm-locations: {rule}"))
    assert document.monitors[0].row_values()["confirm_locations"] == rule
    again = load_text(dump(document.monitors, []))
    assert again.monitors[0].row_values() == document.monitors[0].row_values()
    assert f"confirm-locations: {rule}" in dump(document.monitors, [])


def test_without_the_rule_a_majority_confirms_and_nothing_is_written_back() -> None:
    document = load_text(YAML.replace("    confirm-locations: all\n", ""))
    assert document.monitors[0].row_values()["confirm_locations"] is None
    assert "confirm-locations" not in dump(document.monitors, [])


@pytest.mark.parametrize(("locations", "rule", "message"), [
    (None, 1, "needs locations: with 2 or more locations"),
    (["fra"], "all", "needs locations: with 2 or more locations"),
    (["fra", "waw"], 3, "must be between 1 and the number of locations (2), or all"),
    (["fra", "waw"], 0, "must be between 1 and the number of locations (2), or all"),
])
def test_a_rule_that_cannot_hold_is_named(locations: list[str] | None, rule: object,
                                          message: str) -> None:
    data = SHOP | {"confirm-locations": rule}
    if locations:
        data["locations"] = locations
    with pytest.raises(SpecError) as caught:
        parse_monitor(data)
    assert [(p.path, p.message) for p in caught.value.problems] == [
        (("confirm-locations",), message)]


@pytest.mark.parametrize("rule", ["most", "2", True, 1.5])
def test_a_rule_is_a_number_or_all(rule: object) -> None:
    with pytest.raises(SpecError) as caught:
        parse_monitor(SHOP | {"locations": ["fra", "waw"], "confirm-locations": rule})
    assert {p.path[0] for p in caught.value.problems} == {"confirm-locations"}


def test_a_bad_rule_in_yaml_is_named_with_its_line() -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_text(YAML.replace("confirm-locations: all", "confirm-locations: 4"), "f.yaml")
    assert "monitors[0].confirm-locations: must be between 1" in str(caught.value)


async def test_the_rule_round_trips_over_the_api(client: httpx.AsyncClient,
                                                 owner: Person) -> None:
    body = SHOP | {"locations": ["waw", "fra", "local"], "confirm-locations": 2}
    created = await client.post("/api/v1/monitors", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    assert created.json()["confirm-locations"] == 2
    assert created.json()["regional"] is None
    monitor = f"/api/v1/monitors/{created.json()['id']}"
    read = await client.get(monitor, headers=owner.headers)
    assert read.json()["confirm-locations"] == 2
    changed = await client.patch(monitor, json={"confirm-locations": "all"},
                                 headers=owner.headers | {"If-Match": read.headers["etag"]})
    assert changed.status_code == 200 and changed.json()["confirm-locations"] == "all"
    refused = await client.patch(monitor, json={"locations": None}, headers=owner.headers | {
        "If-Match": changed.headers["etag"]})
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["confirm-locations"]
    local = await client.patch(monitor, json={"locations": None, "confirm-locations": None},
                               headers=owner.headers | {"If-Match": changed.headers["etag"]})
    assert local.status_code == 200 and "confirm-locations" not in local.json()
