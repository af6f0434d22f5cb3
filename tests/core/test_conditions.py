from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from dozor.core.conditions import evaluate_all, parse_condition

BODY = json.dumps({
    "status": "UP",
    "name": "john doe",
    "count": 3,
    "ratio": 0.5,
    "enabled": True,
    "nothing": None,
    "version": "1.10",
    "numeric_text": "42",
    "data": [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}],
    "nested": {"deep": {"value": "x"}},
})
VALUES: dict[str, Any] = {
    "STATUS": 200,
    "BODY": BODY,
    "RESPONSE_TIME": timedelta(milliseconds=120),
    "CERTIFICATE_EXPIRATION": timedelta(days=20),
    "DOMAIN_EXPIRATION": timedelta(days=3),
    "IP": "127.0.0.1",
    "CONNECTED": True,
    "DNS_RCODE": "NOERROR",
    "HEADER": {"Content-Type": "application/json; charset=utf-8"},
}


@pytest.mark.parametrize(("text", "expected"), [
    ("[STATUS] == 200", True),
    ("[STATUS] == 503", False),
    ("[STATUS] != 503", True),
    ("[STATUS] < 300", True),
    ("[STATUS] >= 300", False),
    ("[STATUS] <= 200", True),
    ("[STATUS] > 199", True),
    ("[STATUS] == any(200, 201, 204)", True),
    ("[STATUS] == any(500, 503)", False),
    ("[STATUS] != any(500, 503)", True),
    ("[STATUS]==200", True),
    ("[BODY].status == UP", True),
    ("[BODY].status == DOWN", False),
    ("[BODY].status == up", False),
    ('[BODY].name == "john doe"', True),
    ("[BODY].name == 'john doe'", True),
    ("[BODY].name == pat(john*)", True),
    ("[BODY].name == pat(jane*)", False),
    ("[BODY].name != pat(jane*)", True),
    ("[BODY] == pat(*UP*)", True),
    ("[BODY].count == 3", True),
    ("[BODY].count > 2", True),
    ("[BODY].count < 3", False),
    ("[BODY].ratio == 0.5", True),
    ("[BODY].ratio < 1", True),
    ("[BODY].enabled == true", True),
    ("[BODY].enabled == false", False),
    ("[BODY].nothing == null", True),
    ("[BODY].version == 1.10", True),
    ("[BODY].version == 1.1", False),
    ("[BODY].numeric_text > 41", True),
    ("[BODY].name > 41", False),
    ("[BODY].data[0].id == 1", True),
    ("[BODY].data[1].id == 2", True),
    ("[BODY].data[-1].id == 2", True),
    ("[BODY].data[0].tags[1] == b", True),
    ("[BODY].nested.deep.value == x", True),
    ("len([BODY].data) == 2", True),
    ("len([BODY].data[1].tags) == 0", True),
    ("len([BODY].name) > 5", True),
    ("len([BODY]) > 10", True),
    ("has([BODY].nested) == true", True),
    ("has([BODY].errors) == false", True),
    ("has([BODY].errors) == true", False),
    ("[BODY].missing == anything", False),
    ("[BODY].data[5].id == 1", False),
    ("[RESPONSE_TIME] < 300", True),
    ("[RESPONSE_TIME] < 100", False),
    ("[RESPONSE_TIME] < 1s", True),
    ("[CERTIFICATE_EXPIRATION] > 14d", True),
    ("[CERTIFICATE_EXPIRATION] > 48h", True),
    ("[CERTIFICATE_EXPIRATION] > 30d", False),
    ("[DOMAIN_EXPIRATION] > 7d", False),
    ("[IP] == 127.0.0.1", True),
    ("[IP] == pat(127.*)", True),
    ("[CONNECTED] == true", True),
    ("[CONNECTED] == TRUE", True),
    ("[DNS_RCODE] == NOERROR", True),
    ("[HEADER].content-type == pat(application/json*)", True),
    ("[HEADER].X-Missing == anything", False),
    ("has([HEADER].X-Missing) == false", True),
])
def test_a_condition_evaluates_against_measured_values(text: str, expected: bool) -> None:
    ok, _ = parse_condition(text).evaluate(VALUES)
    assert ok is expected


@pytest.mark.parametrize(("text", "values", "explanation"), [
    ("[STATUS] == 200", {"STATUS": 503}, "[STATUS] (503) == 200"),
    ("[STATUS] == any(200, 201)", {"STATUS": 500}, "[STATUS] (500) == any(200, 201)"),
    ("[BODY].status == UP", {"BODY": '{"status": "DOWN"}'}, "[BODY].status (DOWN) == UP"),
    ("[BODY].a.b == 1", {"BODY": '{"a": {}}'}, "[BODY].a.b (missing: no key 'b') == 1"),
    ("[BODY].status == UP", {"BODY": "<html>"},
     "[BODY].status (missing: the body is not JSON) == UP"),
    ("[BODY].items[3] == x", {"BODY": '{"items": []}'},
     "[BODY].items[3] (missing: no item [3]) == x"),
    ("len([BODY].items) > 0", {"BODY": '{"items": []}'}, "len([BODY].items) (0) > 0"),
    ("[CERTIFICATE_EXPIRATION] > 14d", {"CERTIFICATE_EXPIRATION": timedelta(days=3, hours=2)},
     "[CERTIFICATE_EXPIRATION] (3d2h) > 14d"),
    ("[CERTIFICATE_EXPIRATION] > 14d", {}, "[CERTIFICATE_EXPIRATION] "
     "(missing: no [CERTIFICATE_EXPIRATION] for this check) > 14d"),
    ("[RESPONSE_TIME] < 300", {"RESPONSE_TIME": timedelta(milliseconds=512)},
     "[RESPONSE_TIME] (512ms) < 300"),
    ("[BODY] == pat(*ok*)", {"BODY": "x" * 200}, f"[BODY] ({'x' * 77}...) == pat(*ok*)"),
])
def test_a_failed_condition_explains_itself_with_the_measured_value(
    text: str, values: dict[str, Any], explanation: str
) -> None:
    assert parse_condition(text).evaluate(values) == (False, explanation)


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty condition"),
    ("[STATUS]", "expected exactly one of"),
    ("[STATUS] == 200 == 300", "expected exactly one of"),
    ("[STATUS] =! 200", "unknown operator"),
    ("[STATUS] = 200", "unknown operator"),
    ("[NOPE] == 1", "unknown placeholder [NOPE]"),
    ("STATUS == 200", "must be a placeholder"),
    ("[STATUS].x == 200", "takes no path"),
    ("[BODY]..x == 1", "bad JSON path"),
    ("[BODY].x[a] == 1", "bad JSON path"),
    ("[HEADER] == x", "needs a header name"),
    ("[STATUS] ==", "nothing to compare with"),
    ("[STATUS] == [BODY].code", "must be a value"),
    ("pat([BODY]) == x", "cannot be on the left side"),
    ("[BODY] == len(x)", "cannot be on the right side"),
    ("[BODY].name < pat(j*)", "pat() only works with == or !="),
    ("[STATUS] > any(1, 2)", "any() only works with == or !="),
    ("[STATUS] == any(1, , 2)", "any() needs values"),
])
def test_a_bad_condition_is_a_clear_error(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_condition(text)


def test_operators_inside_quotes_and_patterns_are_values() -> None:
    assert parse_condition('[BODY].expr == "a<b"').evaluate({"BODY": '{"expr": "a<b"}'})[0]
    assert parse_condition("[BODY] == pat(*<ok>*)").evaluate({"BODY": "<ok>"})[0]


def test_a_condition_prints_as_it_was_written() -> None:
    assert str(parse_condition("  [STATUS] == 200 ")) == "[STATUS] == 200"


def test_a_condition_names_the_placeholder_it_reads() -> None:
    assert parse_condition("len([BODY].data) > 1").placeholder == "BODY"
    assert parse_condition("[HEADER].Server == x").placeholder == "HEADER"


def test_evaluating_many_conditions_returns_only_the_failures() -> None:
    conditions = [parse_condition(text) for text in
                  ("[STATUS] == 200", "[BODY].status == UP", "[BODY].count > 5")]
    assert evaluate_all(conditions, VALUES) == ["[BODY].count (3) > 5"]


def test_the_json_body_is_parsed_once_for_all_conditions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda text: calls.append(1) or real_loads(text))
    conditions = [parse_condition("[BODY].status == UP"), parse_condition("[BODY].count == 3")]
    assert evaluate_all(conditions, VALUES) == []
    assert len(calls) == 1
