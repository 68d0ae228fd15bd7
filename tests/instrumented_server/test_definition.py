from __future__ import annotations

import pytest

from instrumented_server.definition import DefinitionError, load_definition, parse_definition
from tests.instrumented_server.conftest import TEST_APP


def test_the_default_app_covers_every_routing_feature():
    app = load_definition()
    paths = [r.path for r in app.routes]
    assert "/(shop)/products/[id]" in paths  # a route group and a dynamic segment
    assert any("[..." in p and "[[" not in p for p in paths)  # catch-all
    assert any("[[..." in p for p in paths)  # optional catch-all
    assert any("(..)" in p for p in paths)  # an intercepting route
    assert any(r.slots for r in app.routes)  # a parallel slot
    assert {r.render for r in app.routes} == {"static", "isr", "dynamic"}
    assert any(r.loading for r in app.routes)
    assert any(f.after for r in app.routes for f in r.fetches)  # a declared waterfall


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('upstream = "api", path = "/home"', 'upstream = "nope", path = "/home"'),
            "unknown upstream 'nope'",
        ),
        (('render = "isr"\nrevalidate = 0.3', 'render = "isr"'), "needs revalidate"),
        (('path = "/about"', 'path = "/ab out"'), "invalid segment"),
        (('path = "/products/{id}"', 'path = "/products/{sku}"'), "does not have"),
        (('boundary = "reviews"', 'boundary = "ratings"'), "not in boundaries"),
        (('after = "stats"', 'after = "ghost"'), "unknown fetch 'ghost'"),
        (('path = "/about"', 'path = "/"'), "declared more than once"),
        (
            ('path = "/about"\nrender = "static"', 'path = "/about"\nrender = "sometimes"'),
            "routes.1.render",
        ),
        (
            ('fetches = ["stats", "mine"]', 'fetches = ["stats", "nothing"]'),
            "unknown fetch 'nothing'",
        ),
        (("cost_ms = 1", 'cost_ms = 1\ncolour = "red"'), "Extra inputs are not permitted"),
        (('source = "/old"', 'source = "/(unclosed"'), "not a valid pattern"),
    ],
)
def test_each_mistake_is_reported_with_where_it_is(change, message):
    old, new = change
    assert old in TEST_APP, old
    with pytest.raises(DefinitionError) as info:
        parse_definition(TEST_APP.replace(old, new, 1), "app.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("app.toml:")


def test_several_mistakes_are_reported_together():
    broken = TEST_APP.replace('upstream = "api", path = "/home"', 'upstream = "x", path = "/home"')
    broken = broken.replace('path = "/me", scope', 'path = "/me", scope = "public", x')
    with pytest.raises(DefinitionError, match=r"2 mistake\(s\)|unknown upstream"):
        parse_definition(broken)


def test_invalid_toml_and_missing_files_are_clear(tmp_path):
    with pytest.raises(DefinitionError, match="not valid TOML"):
        parse_definition("name = ")
    with pytest.raises(DefinitionError, match="cannot read"):
        load_definition(tmp_path / "absent.toml")


def test_a_fetch_cycle_is_refused():
    cyclic = TEST_APP.replace(
        '{ name = "stats", upstream = "slow", path = "/stats", tags = ["stats"] }',
        '{ name = "stats", upstream = "slow", path = "/stats", tags = ["stats"], '
        'after = "details" }',
    )
    with pytest.raises(DefinitionError, match="cycle"):
        parse_definition(cyclic)
