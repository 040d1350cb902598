"""Property tests: scope hierarchy decisions (MCP "Step-Up Authorization Flow")."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ostiary.resource.scopes import ScopePolicy

SCOPES = st.sampled_from(["a", "b", "c", "d", "e", "f"])
HIERARCHY = st.dictionaries(SCOPES, st.lists(SCOPES, max_size=3), max_size=6)
SETS = st.lists(SCOPES, max_size=6)


@given(HIERARCHY, SETS)
def test_expand_is_a_closure(implies: dict[str, list[str]], granted: list[str]) -> None:
    policy = ScopePolicy(implies)
    expanded = policy.expand(granted)
    assert expanded >= set(granted)
    assert policy.expand(expanded) == expanded
    for scope in expanded:
        assert set(implies.get(scope, ())) <= expanded


@given(HIERARCHY, SETS, SETS)
def test_missing_is_exactly_what_the_closure_lacks(
    implies: dict[str, list[str]], granted: list[str], needed: list[str]
) -> None:
    policy = ScopePolicy(implies)
    missing = policy.missing(granted, needed)
    assert missing == tuple(s for s in dict.fromkeys(needed) if s not in policy.expand(granted))


@given(HIERARCHY, SETS, SETS, SETS)
def test_more_granted_never_needs_more(
    implies: dict[str, list[str]], granted: list[str], extra: list[str], needed: list[str]
) -> None:
    policy = ScopePolicy(implies)
    assert set(policy.missing([*granted, *extra], needed)) <= set(policy.missing(granted, needed))


@given(SETS, SETS)
def test_without_hierarchy_scopes_are_literal(granted: list[str], needed: list[str]) -> None:
    assert ScopePolicy().missing(granted, needed) == tuple(
        s for s in dict.fromkeys(needed) if s not in granted
    )
