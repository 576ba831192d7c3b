"""Bulk operations: a query run in the background, its result written as Shopify's JSONL.

Every node of a connection becomes one line; nodes of a nested connection are lines of their own
carrying ``__parentId``, written after their parent's line. Plain nested objects stay inline.
The walk compiles each selection once, so 100 000 variants take seconds, not minutes.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values

from lnb_pipeline.sandbox.shopify.cost import is_connection
from lnb_pipeline.sandbox.shopify.resolvers import RESOLVERS, SOURCES, Context
from lnb_pipeline.sandbox.shopify.state import gid, now_iso

MAX_CONNECTIONS = 5
MAX_CONNECTION_DEPTH = 2
MAX_RUNNING_QUERIES = 5
BULK_ERROR_CODES = ("ACCESS_DENIED", "INTERNAL_SERVER_ERROR", "TIMEOUT")
CANCEL_CHECK_EVERY = 500
FINAL_STATUSES = ("COMPLETED", "FAILED", "CANCELED", "EXPIRED")


class BulkQueryError(ValueError):
    """A bulk request Shopify would refuse; becomes a ``userErrors`` entry with this code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class CompiledField:
    key: str
    name: str
    type_name: str
    args: dict[str, Any]
    kind: str
    """``leaf``, ``object`` or ``connection``."""
    children: list[CompiledField]
    resolver: Callable[[Context, Any, dict[str, Any]], Any] | None


@dataclass
class BulkSettings:
    """Knobs tests and users turn through ``POST /_sandbox/config``."""

    delay_seconds: float = 0.0
    fail_with: str | None = None


class BulkOperations:
    """Every bulk operation of one shop, and the threads running them."""

    def __init__(self, schema: GraphQLSchema, context_factory: Callable[[], Context],
                 url_for: Callable[[str], str]) -> None:
        self._schema = schema
        self._context_factory = context_factory
        self._url_for = url_for
        self._lock = threading.Lock()
        self._operations: dict[str, dict[str, Any]] = {}
        self._cancel_requested: set[str] = set()
        self._numbers = itertools.count(1)
        self._directory = Path(tempfile.mkdtemp(prefix="lnb-sandbox-bulk-"))
        self.settings = BulkSettings()

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(op) for op in self._operations.values()]

    def get(self, operation_id: str) -> dict[str, Any] | None:
        with self._lock:
            operation = self._operations.get(operation_id)
            return dict(operation) if operation else None

    def result_file(self, operation_id: str) -> Path | None:
        path = self._directory / f"{operation_id.rsplit('/', 1)[-1]}.jsonl"
        return path if path.is_file() else None

    def clear(self) -> None:
        with self._lock:
            for operation_id in self._operations:
                self._cancel_requested.add(operation_id)
            self._operations.clear()
        self.settings = BulkSettings()

    def expire(self, operation_id: str) -> bool:
        """What Shopify does seven days on: the status turns EXPIRED and the result URL stops working."""
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is None or operation["status"] != "COMPLETED":
                return False
            operation.update(status="EXPIRED", url=None, partialDataUrl=None)
        path = self.result_file(operation_id)
        if path is not None:
            path.unlink()
        return True

    def start(self, query: str) -> dict[str, Any]:
        """Validate and launch a bulk query; raises ``BulkQueryError`` with Shopify's reason."""
        operation_node, fields = self._compile(query)
        with self._lock:
            running = [op for op in self._operations.values() if op["status"] in ("CREATED", "RUNNING")]
            if len(running) >= MAX_RUNNING_QUERIES:
                raise BulkQueryError(
                    f"A maximum of {MAX_RUNNING_QUERIES} bulk queries can run at the same time.", "LIMIT_REACHED")
            number = next(self._numbers)
            operation = {
                "id": gid("BulkOperation", number), "status": "CREATED", "errorCode": None,
                "createdAt": now_iso(), "completedAt": None, "objectCount": "0", "rootObjectCount": "0",
                "fileSize": None, "url": None, "partialDataUrl": None, "query": query, "type": "QUERY",
            }
            self._operations[operation["id"]] = operation
        threading.Thread(target=self._run, args=(operation["id"], fields), daemon=True,
                         name=f"bulk-{number}").start()
        return dict(operation)

    def cancel(self, operation_id: str) -> dict[str, Any]:
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is None:
                raise BulkQueryError("Bulk operation does not exist", "INVALID")
            if operation["status"] not in ("CREATED", "RUNNING"):
                raise BulkQueryError(
                    f"A bulk operation cannot be canceled when it is {operation['status'].lower()}", "INVALID")
            operation["status"] = "CANCELING"
            self._cancel_requested.add(operation_id)
            return dict(operation)

    def _compile(self, query: str) -> tuple[OperationDefinitionNode, list[CompiledField]]:
        try:
            document = parse(query)
        except GraphQLError as error:
            raise BulkQueryError(f"Invalid bulk query: {error.message}", "INVALID") from None
        errors = validate(self._schema, document)
        if errors:
            raise BulkQueryError(f"Invalid bulk query: {errors[0].message}", "INVALID")
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation.value != "query":
            raise BulkQueryError("Bulk queries must contain exactly one query operation.", "INVALID")
        root = self._schema.query_type
        fields = self._compile_selection(operations[0].selection_set, root)
        connections = list(_connections(fields, 0))
        if not connections:
            raise BulkQueryError("Bulk queries must contain at least one connection.", "INVALID")
        if len(connections) > MAX_CONNECTIONS:
            raise BulkQueryError(f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections.", "INVALID")
        if max(depth for _, depth in connections) > MAX_CONNECTION_DEPTH:
            raise BulkQueryError(
                f"Bulk queries cannot contain connections with a nesting depth greater than {MAX_CONNECTION_DEPTH}.",
                "INVALID")
        for connection, depth in connections:
            node_fields = _node_fields(connection)
            if list(_connections(node_fields, 0)) and not any(f.name == "id" and f.key == "id" for f in node_fields):
                raise BulkQueryError(
                    f"The parent of a nested connection must select 'id' ({connection.key}).", "INVALID")
        return operations[0], fields

    def _compile_selection(self, selection_set: SelectionSetNode | None, parent: Any) -> list[CompiledField]:
        compiled: list[CompiledField] = []
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, InlineFragmentNode):
                compiled.extend(self._compile_selection(selection.selection_set, parent))
                continue
            if not isinstance(selection, FieldNode):
                raise BulkQueryError("Bulk queries cannot use named fragments.", "INVALID")
            name = selection.name.value
            key = selection.alias.value if selection.alias else name
            if name == "__typename":
                compiled.append(CompiledField(key, name, parent.name, {}, "leaf", [], None))
                continue
            definition = parent.fields[name]
            named = get_named_type(definition.type)
            args = {k: v for k, v in get_argument_values(definition, selection, {}).items()
                    if k not in ("first", "after", "last", "before")}
            if is_leaf_type(named):
                kind = "leaf"
            elif is_connection(named.name):
                kind = "connection"
            else:
                kind = "object"
            children = [] if kind == "leaf" else self._compile_selection(selection.selection_set, named)
            resolver = SOURCES.get((parent.name, name)) if kind == "connection" else RESOLVERS.get((parent.name, name))
            compiled.append(CompiledField(key, name, named.name, args, kind, children, resolver))
        return compiled

    def _run(self, operation_id: str, fields: list[CompiledField]) -> None:
        self._update(operation_id, status="RUNNING")
        path = self._directory / f"{operation_id.rsplit('/', 1)[-1]}.jsonl"
        context = self._context_factory()
        counts = {"objects": 0, "roots": 0}
        settings = self.settings
        try:
            if settings.delay_seconds:
                self._sleep_unless_canceled(operation_id, settings.delay_seconds)
            with path.open("w", encoding="utf-8") as out:
                writer = _LineWriter(out, context, counts, lambda: self._check(operation_id, counts, settings))
                writer.write_root(fields)
        except _Canceled:
            self._update(operation_id, status="CANCELED", completedAt=now_iso(),
                         objectCount=str(counts["objects"]), rootObjectCount=str(counts["roots"]))
            return
        except _InjectedFailure as failure:
            self._update(operation_id, status="FAILED", errorCode=failure.code, completedAt=now_iso(),
                         objectCount=str(counts["objects"]), rootObjectCount=str(counts["roots"]),
                         partialDataUrl=self._url_for(operation_id) if counts["objects"] else None)
            return
        except Exception:  # a sandbox bug must surface as a failed operation, as Shopify's would
            self._update(operation_id, status="FAILED", errorCode="INTERNAL_SERVER_ERROR", completedAt=now_iso())
            raise
        has_data = counts["objects"] > 0
        self._update(
            operation_id, status="COMPLETED", completedAt=now_iso(), objectCount=str(counts["objects"]),
            rootObjectCount=str(counts["roots"]), fileSize=str(path.stat().st_size) if has_data else None,
            url=self._url_for(operation_id) if has_data else None,
        )

    def _sleep_unless_canceled(self, operation_id: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if operation_id in self._cancel_requested:
                raise _Canceled()
            time.sleep(0.05)

    def _check(self, operation_id: str, counts: dict[str, int], settings: BulkSettings) -> None:
        """Called every few hundred objects: honour cancels, publish progress, inject failures."""
        if operation_id in self._cancel_requested:
            raise _Canceled()
        self._update(operation_id, objectCount=str(counts["objects"]), rootObjectCount=str(counts["roots"]))
        if settings.fail_with and counts["objects"] >= CANCEL_CHECK_EVERY:
            raise _InjectedFailure(settings.fail_with)

    def _update(self, operation_id: str, **changes: Any) -> None:
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is not None:
                operation.update(changes)


class _Canceled(Exception):
    pass


class _InjectedFailure(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _node_fields(connection: CompiledField) -> list[CompiledField]:
    """The selection made on each node, whether through ``nodes`` or ``edges { node }``."""
    for child in connection.children:
        if child.name == "nodes":
            return child.children
        if child.name == "edges":
            for inner in child.children:
                if inner.name == "node":
                    return inner.children
    return []


def _connections(fields: list[CompiledField], depth: int) -> Iterator[tuple[CompiledField, int]]:
    for compiled in fields:
        if compiled.kind == "connection":
            yield compiled, depth + 1
            yield from _connections(_node_fields(compiled), depth + 1)
        elif compiled.kind == "object":
            yield from _connections(compiled.children, depth)


class _LineWriter:
    """Writes JSONL lines: a connection node, then its nested connections' nodes."""

    def __init__(self, out: IO[str], context: Context, counts: dict[str, int], check: Callable[[], None]) -> None:
        self._out = out
        self._context = context
        self._counts = counts
        self._check = check
        self._encode = json.JSONEncoder(separators=(",", ":")).encode

    def write_root(self, fields: list[CompiledField]) -> None:
        deferred: list[tuple[CompiledField, Any, str | None]] = []
        self._project(None, fields, deferred)
        for connection, owner, parent_id in deferred:
            self._write_connection(connection, owner, parent_id, root=parent_id is None)

    def _write_connection(self, connection: CompiledField, owner: Any, parent_id: str | None, root: bool) -> None:
        assert connection.resolver is not None
        node_fields = _node_fields(connection)
        for item in connection.resolver(self._context, owner, connection.args):
            deferred: list[tuple[CompiledField, Any, str | None]] = []
            line = self._project(item, node_fields, deferred)
            if parent_id is not None:
                line["__parentId"] = parent_id
            self._out.write(self._encode(line))
            self._out.write("\n")
            self._counts["objects"] += 1
            if root:
                self._counts["roots"] += 1
            if self._counts["objects"] % CANCEL_CHECK_EVERY == 0:
                self._check()
            line_id = line.get("id")
            for nested, nested_owner, _ in deferred:
                self._write_connection(nested, nested_owner, line_id, root=False)

    def _project(self, obj: Any, fields: list[CompiledField],
                 deferred: list[tuple[CompiledField, Any, str | None]]) -> dict[str, Any]:
        """The inline part of an object; nested connections are queued in ``deferred``."""
        result: dict[str, Any] = {}
        for field in fields:
            if field.kind == "connection":
                deferred.append((field, obj, None))
                continue
            if field.name == "__typename":
                result[field.key] = obj.get("__typename", field.type_name) if isinstance(obj, dict) else None
                continue
            if field.resolver is not None:
                value = field.resolver(self._context, obj, field.args)
            else:
                value = obj.get(field.name) if isinstance(obj, dict) else None
            if field.kind == "object" and value is not None:
                if isinstance(value, list):
                    value = [self._project(v, field.children, deferred) for v in value]
                else:
                    value = self._project(value, field.children, deferred)
            result[field.key] = value
        return result
