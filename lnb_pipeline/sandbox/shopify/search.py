"""Shopify's search syntax for ``query:`` arguments, for the fields the sandbox supports.

Supported: ``field:value`` terms joined by spaces or ``AND``, ``OR`` between groups, a leading
``-`` or ``NOT`` to negate, quoted values, ``value*`` prefix matches, and ``>``, ``>=``, ``<``,
``<=`` on dates and numbers. Like Shopify, an unknown field is ignored and reported back as a
search warning instead of failing the query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Getter = Callable[[dict[str, Any]], Any]

_TOKEN = re.compile(r'(-?)([A-Za-z_][\w.]*):(>=|<=|>|<)?("[^"]*"|\'[^\']*\'|\S+)|("[^"]*"|\S+)')


@dataclass(frozen=True)
class Term:
    field: str
    operator: str
    value: str
    negated: bool


@dataclass
class ParsedSearch:
    groups: list[list[Term]]
    unknown_fields: list[str]

    def matches(self, item: dict[str, Any], fields: dict[str, Getter]) -> bool:
        if not self.groups:
            return True
        return any(all(_term_matches(term, item, fields) for term in group) for group in self.groups)


def parse_search(query: str | None, fields: dict[str, Getter]) -> ParsedSearch:
    groups: list[list[Term]] = [[]]
    unknown: list[str] = []
    negate_next = False
    for match in _TOKEN.finditer(query or ""):
        dash, field, operator, value, bare = match.groups()
        if bare is not None:
            word = bare.upper()
            if word == "OR":
                groups.append([])
            elif word == "NOT":
                negate_next = True
            elif word != "AND" and "default" in fields:
                groups[-1].append(Term("default", ":", bare.strip("\"'"), negate_next))
                negate_next = False
            elif word != "AND":
                unknown.append(bare)
            continue
        field = field.lower()
        if field not in fields:
            unknown.append(field)
            negate_next = False
            continue
        groups[-1].append(Term(field, operator or ":", value.strip("\"'"), bool(dash) or negate_next))
        negate_next = False
    return ParsedSearch([g for g in groups if g], unknown)


def search(items: Iterable[dict[str, Any]], query: str | None, fields: dict[str, Getter],
           warnings: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The items a Shopify ``query:`` selects; unknown fields land in ``warnings``."""
    parsed = parse_search(query, fields)
    if warnings is not None:
        for field in parsed.unknown_fields:
            warnings.append({"field": field, "message": "Invalid search field for this query."})
    if not parsed.groups:
        return list(items)
    return [item for item in items if parsed.matches(item, fields)]


def canonical_time(value: str) -> str | None:
    """A date or datetime as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, so stored times compare as text."""
    text = value.strip().strip("'\"")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compare(actual: Any, operator: str, wanted: str) -> bool:
    if actual is None:
        return False
    if isinstance(actual, bool):
        return str(actual).lower() == wanted.lower()
    if isinstance(actual, (int, float)):
        try:
            number = float(wanted)
        except ValueError:
            return False
        return _ordered(actual, operator, number)
    text = str(actual)
    if operator != ":":
        as_time = canonical_time(wanted)
        return as_time is not None and _ordered(text, operator, as_time)
    if wanted.endswith("*"):
        return text.lower().startswith(wanted[:-1].lower())
    return text.lower() == wanted.lower()


def _ordered(actual: Any, operator: str, wanted: Any) -> bool:
    if operator == ">":
        return actual > wanted
    if operator == ">=":
        return actual >= wanted
    if operator == "<":
        return actual < wanted
    if operator == "<=":
        return actual <= wanted
    return actual == wanted


def _term_matches(term: Term, item: dict[str, Any], fields: dict[str, Getter]) -> bool:
    actual = fields[term.field](item)
    values = actual if isinstance(actual, (list, tuple, set)) else [actual]
    found = any(_compare(value, term.operator, term.value) for value in values)
    return found != term.negated
