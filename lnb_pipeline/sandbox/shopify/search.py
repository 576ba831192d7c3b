"""Shopify's search syntax for ``query:`` arguments (shopify.dev, "API search syntax").

Grammar: ``Query = Term { [whitespace Connective] whitespace Term }`` with the connectives ``AND``
(implied between terms) and ``OR`` (binding looser than AND), ``Term = [Modifier] ( "(" Query ")"
| [name Comparator] value )``, modifiers ``-`` (attached) and ``NOT`` (followed by whitespace), and
comparators ``:``, ``:<``, ``:>``, ``:<=``, ``:>=``. Connectives and ``NOT`` count only in capitals.
A value is bare or quoted in single or double quotes; a backslash escapes the next character, in or
out of quotes (``\\:``, ``\\(``, ``\\)``, ``\\\\``, ``\\"``, ``\\'``). A bare value ending in ``*``
matches by prefix (``field:*``: any value). Like Shopify, an unknown field is ignored and reported
back as a search warning; a query that does not parse (an unclosed quote or parenthesis) is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

Getter = Callable[[dict[str, Any]], Any]
COMPARATORS = (":<=", ":>=", ":<", ":>", ":")
CONNECTIVES = ("AND", "OR", "NOT")


class SearchSyntaxError(ValueError):
    """A ``query:`` string that is not in Shopify's search syntax."""


@dataclass(frozen=True)
class Term:
    field: str
    """A search field, or ``default`` for a bare value."""
    operator: str
    value: str
    prefix: bool
    """The value ended in an unescaped, unquoted ``*``: match what starts with it."""


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class All:
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    nodes: tuple[Node, ...]


Node: TypeAlias = Term | Not | All | AnyOf
Token: TypeAlias = str | tuple[bool, list[tuple[str, bool]]]
"""``(``, ``)``, a connective, or a word: (negated by ``-``, its characters with whether each is literal)."""


def _tokens(query: str) -> Iterator[Token]:
    position, length = 0, len(query)
    while position < length:
        char = query[position]
        if char.isspace():
            position += 1
        elif char in "()":
            yield char
            position += 1
        elif char == "-" and query[position + 1:position + 2] == "(":
            yield "NOT"
            position += 1
        else:
            negated = char == "-" and position + 1 < length and not query[position + 1].isspace()
            position, chars = _word(query, position + negated)
            text = "".join(c for c, _ in chars)
            yield text if not negated and text in CONNECTIVES and not any(lit for _, lit in chars) else (negated, chars)


def _word(query: str, position: int) -> tuple[int, list[tuple[str, bool]]]:
    """The characters of one word up to unescaped whitespace or parenthesis; escaped and quoted ones are literal."""
    chars: list[tuple[str, bool]] = []
    quote: str | None = None
    while position < len(query):
        char = query[position]
        if char == "\\":
            if position + 1 == len(query):
                raise SearchSyntaxError("a backslash at the end of the query escapes nothing")
            chars.append((query[position + 1], True))
            position += 2
            continue
        if quote is not None:
            if char == quote:
                quote = None
            else:
                chars.append((char, True))
        elif char in "'\"":
            quote = char
        elif char.isspace() or char in "()":
            break
        else:
            chars.append((char, False))
        position += 1
    if quote is not None:
        raise SearchSyntaxError(f"unclosed {quote} quote")
    return position, chars


def _term(chars: list[tuple[str, bool]]) -> Term:
    """``name:value`` (the first unescaped colon splits) or a bare value, searched in the default fields."""
    colon = next((i for i, (c, literal) in enumerate(chars) if c == ":" and not literal), None)
    field, operator, rest = "default", ":", chars
    if colon is not None:
        field = "".join(c for c, _ in chars[:colon]).lower()
        rest = chars[colon + 1:]
        for comparator in COMPARATORS[:-1]:
            symbols = comparator[1:]
            if [c for c, literal in rest[:len(symbols)] if not literal] == list(symbols):
                operator, rest = comparator, rest[len(symbols):]
                break
    prefix = bool(rest) and rest[-1] == ("*", False)
    value = "".join(c for c, _ in (rest[:-1] if prefix else rest))
    return Term(field, operator, value, prefix)


class _Parser:
    def __init__(self, query: str) -> None:
        self._tokens = list(_tokens(query))
        self._position = 0

    def _peek(self) -> Token | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _next(self) -> Token | None:
        token = self._peek()
        self._position += 1
        return token

    def parse(self) -> Node | None:
        if not self._tokens:
            return None
        node = self._any_of()
        if self._peek() is not None:
            raise SearchSyntaxError(f"unexpected {self._peek()!r}")
        return node

    def _any_of(self) -> Node:
        nodes = [self._all()]
        while self._peek() == "OR":
            self._next()
            nodes.append(self._all())
        return nodes[0] if len(nodes) == 1 else AnyOf(tuple(nodes))

    def _all(self) -> Node:
        nodes = [self._unary()]
        while self._peek() not in (None, ")", "OR"):
            if self._peek() == "AND":
                self._next()
            nodes.append(self._unary())
        return nodes[0] if len(nodes) == 1 else All(tuple(nodes))

    def _unary(self) -> Node:
        token = self._next()
        if token == "NOT":
            return Not(self._unary())
        if token == "(":
            node = self._any_of()
            if self._next() != ")":
                raise SearchSyntaxError("unclosed parenthesis")
            return node
        if token is None or isinstance(token, str):
            where = "at the end" if token is None else f"before {token!r}"
            raise SearchSyntaxError(f"a term is missing {where}")
        negated, chars = token
        term = _term(chars)
        return Not(term) if negated else term


def parse_search(query: str) -> Node | None:
    """The query as a tree of terms; None for an empty one. Raises ``SearchSyntaxError``."""
    return _Parser(query).parse()


def _known(node: Node | None, fields: dict[str, Getter], unknown: list[str]) -> Node | None:
    """The tree without terms on unknown fields (collected in ``unknown``); None when nothing is left."""
    if isinstance(node, Term):
        if node.field in fields:
            return node
        unknown.append(node.value if node.field == "default" else node.field)
        return None
    if isinstance(node, Not):
        inner = _known(node.node, fields, unknown)
        return None if inner is None else Not(inner)
    if isinstance(node, (All, AnyOf)):
        kept = tuple(n for n in (_known(n, fields, unknown) for n in node.nodes) if n is not None)
        return None if not kept else kept[0] if len(kept) == 1 else type(node)(kept)
    return None


def search(items: Iterable[dict[str, Any]], query: str | None, fields: dict[str, Getter],
           warnings: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The items a Shopify ``query:`` selects; unknown fields land in ``warnings``."""
    unknown: list[str] = []
    tree = _known(parse_search(query or ""), fields, unknown)
    if warnings is not None:
        for field in unknown:
            warnings.append({"field": field, "message": "Invalid search field for this query."})
    if tree is None:
        return list(items)
    return [item for item in items if _matches(tree, item, fields)]


def _matches(node: Node, item: dict[str, Any], fields: dict[str, Getter]) -> bool:
    if isinstance(node, Not):
        return not _matches(node.node, item, fields)
    if isinstance(node, All):
        return all(_matches(n, item, fields) for n in node.nodes)
    if isinstance(node, AnyOf):
        return any(_matches(n, item, fields) for n in node.nodes)
    actual = fields[node.field](item)
    values = actual if isinstance(actual, (list, tuple, set)) else [actual]
    return any(_compare(value, node) for value in values)


def canonical_time(value: str) -> str | None:
    """A date or datetime as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, so stored times compare as text."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compare(actual: Any, term: Term) -> bool:
    if actual is None:
        return False
    wanted, operator = term.value, term.operator
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
    if term.prefix:
        return text.lower().startswith(wanted.lower())
    return text.lower() == wanted.lower()


def _ordered(actual: Any, operator: str, wanted: Any) -> bool:
    if operator == ":>":
        return actual > wanted
    if operator == ":>=":
        return actual >= wanted
    if operator == ":<":
        return actual < wanted
    if operator == ":<=":
        return actual <= wanted
    return actual == wanted
