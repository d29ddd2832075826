"""OData query handling for the simulated tenant: errors, $select, $filter, $top and paging tokens.

Only the subset of OData that Graph supports on directory objects and that a sync tool needs is
understood; anything else is refused with the 400 Graph gives, so a client cannot come to rely on a
query the real service would reject.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999


class GraphError(Exception):
    """An error response Graph would give: HTTP status, Graph error code and message."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def unsupported_query(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


# ---------------------------------------------------------------------------------------------- $filter

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),])|(?P<word>[A-Za-z_$][\w/.$:]*))"
)
_COMPARISONS = {"eq", "ne", "ge", "le", "gt", "lt"}


@dataclass(frozen=True)
class _Token:
    kind: str  # "str", "num", "punct", "word"
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise bad_request(f"Invalid filter clause: syntax error at position {position} in '{text}'.")
        kind = match.lastgroup or "word"
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


class _FilterParser:
    """Recursive descent over: or_expr := and_expr ('or' and_expr)*; and_expr := term ('and' term)*."""

    def __init__(self, text: str, resolve: Callable[[str], str]) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.position = 0
        self.resolve = resolve  # filter property name -> canonical name, raising for unsupported ones

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.position != len(self.tokens):
            raise self._error()
        return predicate

    def _error(self) -> GraphError:
        return bad_request(f"Invalid filter clause: syntax error in '{self.text}'.")

    def _peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> _Token:
        token = self._peek()
        if token is None:
            raise self._error()
        self.position += 1
        return token

    def _expect(self, text: str) -> None:
        if self._take().text.lower() != text:
            raise self._error()

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self.position += 1
            return True
        return False

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._keyword("or"):
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return lambda item: any(part(item) for part in parts)

    def _and(self) -> Predicate:
        parts = [self._term()]
        while self._keyword("and"):
            parts.append(self._term())
        if len(parts) == 1:
            return parts[0]
        return lambda item: all(part(item) for part in parts)

    def _literal(self) -> Any:
        token = self._take()
        if token.kind == "str":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "num":
            return float(token.text) if "." in token.text else int(token.text)
        lowered = token.text.lower()
        if lowered in {"true", "false"}:
            return lowered == "true"
        if lowered == "null":
            return None
        raise self._error()

    def _term(self) -> Predicate:
        if self._keyword("not"):
            inner = self._term()
            return lambda item: not inner(item)
        token = self._take()
        if token.kind == "punct" and token.text == "(":
            inner = self._or()
            self._expect(")")
            return inner
        if token.kind != "word":
            raise self._error()
        lowered = token.text.lower()
        if lowered in {"startswith", "endswith"} and self._peek() == _Token("punct", "("):
            return self._string_function(lowered)
        if lowered.endswith("/any") and self._peek() == _Token("punct", "("):
            return self._any(token.text[: -len("/any")])
        name = self.resolve(token.text)
        operator = self._take().text.lower()
        if operator == "in":
            self._expect("(")
            values = [self._literal()]
            while self._peek() == _Token("punct", ","):
                self._take()
                values.append(self._literal())
            self._expect(")")
            folded = {_fold(v) for v in values}
            return lambda item: _fold(item.get(name)) in folded
        if operator not in _COMPARISONS:
            raise self._error()
        value = self._literal()
        return _comparison(name, operator, value)

    def _string_function(self, function: str) -> Predicate:
        self._expect("(")
        name = self.resolve(self._take().text)
        self._expect(",")
        value = self._literal()
        self._expect(")")
        if not isinstance(value, str):
            raise self._error()
        prefix = value.lower()

        def matches(item: Mapping[str, Any]) -> bool:
            actual = item.get(name)
            if not isinstance(actual, str):
                return False
            return (
                actual.lower().startswith(prefix)
                if function == "startswith"
                else actual.lower().endswith(prefix)
            )

        return matches

    def _any(self, collection: str) -> Predicate:
        # groupTypes/any(c:c eq 'Unified'): the one lambda form a sync tool needs.
        name = self.resolve(collection)
        self._expect("(")
        variable = self._take().text
        if ":" not in variable:
            raise self._error()
        if variable.endswith(":"):
            self._take()  # "c: c eq ..." splits the lambda variable from its first use
        operator = self._take().text.lower()
        if operator != "eq":
            raise self._error()
        value = self._literal()
        self._expect(")")
        return lambda item: _fold(value) in {_fold(v) for v in item.get(name) or []}


def _fold(value: Any) -> Any:
    """Graph compares directory strings case-insensitively."""
    return value.lower() if isinstance(value, str) else value


def _comparison(name: str, operator: str, value: Any) -> Predicate:
    def compare(item: Mapping[str, Any]) -> bool:
        actual, expected = _fold(item.get(name)), _fold(value)
        if operator == "eq":
            return bool(actual == expected)
        if operator == "ne":
            return bool(actual != expected)
        if actual is None or expected is None:
            return False
        try:
            return bool(
                {
                    "ge": actual >= expected,
                    "le": actual <= expected,
                    "gt": actual > expected,
                    "lt": actual < expected,
                }[operator]
            )
        except TypeError:
            return False

    return compare


def parse_filter(text: str, filterable: Mapping[str, str], resource: str) -> Predicate:
    """Compile `$filter` text into a predicate over an object's property dict.

    `filterable` maps lower-cased property names to their declared spelling; any other property gives
    Graph's 400 for an unsupported filter clause on `resource` (e.g. "Group").
    """

    def resolve(name: str) -> str:
        declared = filterable.get(name.lower())
        if declared is None:
            raise unsupported_query(
                f"Unsupported or invalid query filter clause specified for property '{name}' "
                f"of resource '{resource}'."
            )
        return declared

    return _FilterParser(text, resolve).parse()


# ------------------------------------------------------------------------------------ $select and $top


def parse_select(text: str | None, known: Callable[[str], str | None], type_name: str) -> list[str] | None:
    """The declared names `$select` asks for, or None when there is no $select."""
    if text is None:
        return None
    selected: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        declared = known(name)
        if declared is None:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
            )
        if declared not in selected:
            selected.append(declared)
    return selected


def parse_top(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE_SIZE
    try:
        top = int(text)
    except ValueError:
        raise bad_request(f"Invalid page size specified: '{text}'. Must be an integer.") from None
    if top < 1 or top > MAX_PAGE_SIZE:
        raise bad_request(
            f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.",
            code="Request_UnsupportedQuery",
        )
    return top


def project(item: Mapping[str, Any], selected: list[str] | None, default: tuple[str, ...]) -> dict[str, Any]:
    """An object as Graph returns it: the `$select`ed properties, or the type's default set."""
    # Graph returns exactly what $select names (not even id unless asked for), as its examples show.
    names = default if selected is None else tuple(selected)
    out: dict[str, Any] = {}
    if "@odata.type" in item:
        out["@odata.type"] = item["@odata.type"]
    for name in names:
        out[name] = item.get(name)
    return out


def parse_orderby(text: str | None, known: Mapping[str, str], resource: str) -> tuple[str, bool] | None:
    """`$orderby=name [asc|desc]` on one property: (declared name, descending), or None."""
    if text is None:
        return None
    parts = text.split()
    if not 1 <= len(parts) <= 2 or (len(parts) == 2 and parts[1].lower() not in {"asc", "desc"}):
        raise unsupported_query(f"Unsupported $orderby clause '{text}'.")
    declared = known.get(parts[0].lower())
    if declared is None:
        raise unsupported_query(
            f"Sorting by property '{parts[0]}' of resource '{resource}' is not supported."
        )
    return declared, len(parts) == 2 and parts[1].lower() == "desc"


def sort_items(items: list[dict[str, Any]], order: tuple[str, bool] | None) -> list[dict[str, Any]]:
    if order is None:
        return items
    name, descending = order
    present = [i for i in items if i.get(name) is not None]
    missing = [i for i in items if i.get(name) is None]
    return sorted(present, key=lambda i: _fold(i[name]), reverse=descending) + missing


# --------------------------------------------------------------------------------------- paging tokens


class PageTokens:
    """Opaque `$skiptoken` values: an offset bound to the request path and query, signed so that a token
    changed by the client is refused rather than silently returning the wrong page."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _binding(self, path: str, query: Mapping[str, str]) -> str:
        canonical = json.dumps(
            [path.lower(), sorted((k.lower(), v) for k, v in query.items() if k.lower() != "$skiptoken")]
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def encode(self, offset: int, path: str, query: Mapping[str, str]) -> str:
        payload = json.dumps({"o": offset, "b": self._binding(path, query)}, separators=(",", ":")).encode()
        signature = hmac.new(self._secret, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(payload + signature).decode("ascii").rstrip("=")

    def decode(self, token: str, path: str, query: Mapping[str, str]) -> int:
        invalid = bad_request("Invalid paging token: follow @odata.nextLink exactly as returned.")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        payload, signature = raw[:-12], raw[-12:]
        expected = hmac.new(self._secret, payload, hashlib.sha256).digest()[:12]
        if len(raw) <= 12 or not hmac.compare_digest(signature, expected):
            raise invalid
        data = json.loads(payload)
        if data.get("b") != self._binding(path, query) or not isinstance(data.get("o"), int) or data["o"] < 0:
            raise invalid
        offset: int = data["o"]
        return offset
