"""Path templates of google.api.http rules."""

from __future__ import annotations

import pytest

from edge.pathtemplate import TemplateError, parse


def test_literals_variables_and_verbs() -> None:
    template = parse("/v1/positions/{position_id}:close")
    assert template.verb == "close"
    assert template.match("/v1/positions/p-1:close") == {"position_id": "p-1"}
    assert template.match("/v1/positions/p-1") is None
    assert template.match("/v1/positions/a/b:close") is None
    assert template.openapi_path() == "/v1/positions/{position_id}:close"


def test_variables_are_percent_decoded() -> None:
    template = parse("/v1/instruments/{symbol}/ticker")
    assert template.match("/v1/instruments/BTC%2FUSD/ticker") == {"symbol": "BTC/USD"}
    assert template.match("/v1/instruments//ticker") is None


def test_a_template_without_verb_does_not_match_a_verb_path() -> None:
    assert parse("/v1/prices").match("/v1/prices:stream") is None
    assert parse("/v1/prices:stream").match("/v1/prices:stream") == {}


def test_nested_and_multi_segment_variables() -> None:
    template = parse("/v1/{name=shelves/*/books/**}")
    assert template.match("/v1/shelves/s1/books/a/b%2Fc") == {"name": "shelves/s1/books/a/b/c"}
    assert template.match("/v1/shelves/s1/books") is None
    assert template.openapi_path() == "/v1/{name}"
    dotted = parse("/v1/{book.id}/x")
    assert dotted.match("/v1/7/x") == {"book.id": "7"}


@pytest.mark.parametrize(
    "text",
    ["v1/x", "/v1//x", "/v1/{}", "/v1/{a", "/v1/{a}/{a}", "/v1/**/x", "/v1/x:", "/v1/{1a}"],
)
def test_malformed_templates_are_rejected(text: str) -> None:
    with pytest.raises(TemplateError):
        parse(text)
