"""Bulk operations: a query run in the background, its result written as Shopify's JSONL.

Every node of a connection becomes one line; nodes of a nested connection are lines of their own
carrying ``__parentId``. Plain nested objects stay inline. With ``groupObjects: true`` a parent's
children follow it directly. With ``false`` (the schema's default since 2026-01) Shopify promises
no order, so the sandbox writes lines in blocks of a few parents, a block's child lines either all
before or all after its parents: children come before their parent, or after it with other parents
in between, and a client that relies on any order fails here. Parents keep their order, and each
parent's children theirs. Block sizes and sides come from a generator seeded with the operation's
number, so a given operation always writes the same file.

The finished file is handed out as a signed link on another host (``storage.BulkStorage``), not by
the shop. The walk compiles each selection once, so 100 000 variants take seconds, not minutes.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
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
from lnb_pipeline.sandbox.shopify.storage import RESULT_URL_TTL_SECONDS, BulkStorage

MAX_CONNECTIONS = 5
MAX_CONNECTION_DEPTH = 2
MAX_RUNNING_QUERIES = 5
BULK_ERROR_CODES = ("ACCESS_DENIED", "INTERNAL_SERVER_ERROR", "TIMEOUT")
CANCEL_CHECK_EVERY = 500
FINAL_STATUSES = ("COMPLETED", "FAILED", "CANCELED", "EXPIRED")
UNGROUPED_BLOCK_ROOTS = (1, 16)
"""Fewest and most parents per block of ungrouped output."""


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
    url_ttl_seconds: int = RESULT_URL_TTL_SECONDS
    """How long, at least, result links stay valid from the end of the operation."""


class BulkOperations:
    """Every bulk operation of one shop, and the threads running them."""

    def __init__(self, schema: GraphQLSchema, context_factory: Callable[[], Context], *,
                 storage: BulkStorage | None = None) -> None:
        """Results are served by ``storage``, by default a new ``BulkStorage`` on 127.0.0.1 named
        ``localhost``: another host than the shop's, as Shopify's links point to cloud storage."""
        self._schema = schema
        self._context_factory = context_factory
        self.storage = storage or BulkStorage()
        self._lock = threading.Lock()
        self._operations: dict[str, dict[str, Any]] = {}
        self._objects: dict[str, str] = {}
        """Operation id -> name of its result in ``storage``, to expire the link with the operation."""
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
        path = self._path(operation_id)
        return path if path.is_file() else None

    def _path(self, operation_id: str) -> Path:
        return self._directory / f"{operation_id.rsplit('/', 1)[-1]}.jsonl"

    def clear(self) -> None:
        """Forget every operation and delete its file (results can be hundreds of MB; a running operation
        deletes its own as it stops); old links then answer NoSuchKey."""
        with self._lock:
            for operation_id, operation in self._operations.items():
                self._cancel_requested.add(operation_id)
                if operation["status"] in FINAL_STATUSES:
                    self._path(operation_id).unlink(missing_ok=True)
            self._operations.clear()
            self._objects.clear()
        self.storage.forget_all()
        self.settings = BulkSettings()

    def close(self) -> None:
        """Stop the storage server and delete every result."""
        self.clear()
        self.storage.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    def expire(self, operation_id: str) -> bool:
        """What Shopify does seven days on: the status turns EXPIRED and the result URL stops working."""
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is None or operation["status"] != "COMPLETED":
                return False
            operation.update(status="EXPIRED", url=None, partialDataUrl=None)
            name = self._objects.get(operation_id)
        if name is not None:
            self.storage.expire(name)
        self._path(operation_id).unlink(missing_ok=True)
        return True

    def start(self, query: str, group_objects: bool = False) -> dict[str, Any]:
        """Validate and launch a bulk query; raises ``BulkQueryError`` with Shopify's reason.

        The answer is the operation as created (status CREATED), copied before its thread starts:
        copied after, it could already be RUNNING or COMPLETED, which Shopify never answers here.
        """
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
            created = dict(operation)
        threading.Thread(target=self._run, args=(operation["id"], number, fields, group_objects), daemon=True,
                         name=f"bulk-{number}").start()
        return created

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

    def _run(self, operation_id: str, number: int, fields: list[CompiledField], group_objects: bool) -> None:
        self._update(operation_id, status="RUNNING")
        path = self._path(operation_id)
        context = self._context_factory()
        counts = {"objects": 0, "roots": 0}
        settings = self.settings
        try:
            if settings.delay_seconds:
                self._sleep_unless_canceled(operation_id, settings.delay_seconds)
            with path.open("w", encoding="utf-8") as out:
                output = _GroupedOutput(out) if group_objects else _UngroupedOutput(out, random.Random(number))
                writer = _LineWriter(output, context, counts, lambda: self._check(operation_id, counts, settings))
                try:
                    writer.write_root(fields)
                finally:
                    output.flush()
            if operation_id in self._cancel_requested:  # after the last check: too small a result to meet one
                raise _Canceled()
        except _Canceled:
            path.unlink(missing_ok=True)
            self._update(operation_id, status="CANCELED", completedAt=now_iso(),
                         objectCount=str(counts["objects"]), rootObjectCount=str(counts["roots"]))
            return
        except _InjectedFailure as failure:
            self._update(operation_id, status="FAILED", errorCode=failure.code, completedAt=now_iso(),
                         objectCount=str(counts["objects"]), rootObjectCount=str(counts["roots"]),
                         partialDataUrl=self._publish(operation_id, number, path, settings)
                         if counts["objects"] else None)
            return
        except Exception:  # a sandbox bug must surface as a failed operation, as Shopify's would
            self._update(operation_id, status="FAILED", errorCode="INTERNAL_SERVER_ERROR", completedAt=now_iso())
            raise
        has_data = counts["objects"] > 0
        self._update(
            operation_id, status="COMPLETED", completedAt=now_iso(), objectCount=str(counts["objects"]),
            rootObjectCount=str(counts["roots"]), fileSize=str(path.stat().st_size) if has_data else None,
            url=self._publish(operation_id, number, path, settings) if has_data else None,
        )

    def _publish(self, operation_id: str, number: int, path: Path, settings: BulkSettings) -> str | None:
        """A signed link to the result, valid ``url_ttl_seconds`` from now; None if the shop was reset meanwhile."""
        published = self.storage.publish(path, f"bulk-{number}.jsonl", settings.url_ttl_seconds)
        with self._lock:
            if operation_id not in self._operations:
                return None
            self._objects[operation_id] = published.name
        return published.url

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


class _GroupedOutput:
    """``groupObjects: true``: every line as it comes, so children follow their parent."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def root(self, text: str) -> None:
        self._out.write(text)

    def child(self, text: str) -> None:
        self._out.write(text)

    def flush(self) -> None:
        """Nothing held back."""


class _UngroupedOutput:
    """``groupObjects: false``: blocks of 1 to 16 parents, each block's child lines before or after them."""

    def __init__(self, out: IO[str], rng: random.Random) -> None:
        self._out = out
        self._rng = rng
        self._roots: list[str] = []
        self._children: list[str] = []
        self._block = rng.randint(*UNGROUPED_BLOCK_ROOTS)

    def root(self, text: str) -> None:
        """A new parent: the block is written first if full, so a block never splits a parent's children."""
        if len(self._roots) >= self._block:
            self.flush()
            self._block = self._rng.randint(*UNGROUPED_BLOCK_ROOTS)
        self._roots.append(text)

    def child(self, text: str) -> None:
        self._children.append(text)

    def flush(self) -> None:
        """Also called when the walk stops early, so partial data holds every line counted."""
        first, then = (self._children, self._roots) if self._rng.random() < 0.5 else (self._roots, self._children)
        self._out.writelines(first)
        self._out.writelines(then)
        self._children.clear()
        self._roots.clear()


class _LineWriter:
    """Walks the query: each connection node, then its nested connections' nodes, to ``output``."""

    def __init__(self, output: _GroupedOutput | _UngroupedOutput, context: Context, counts: dict[str, int],
                 check: Callable[[], None]) -> None:
        self._output = output
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
                self._output.child(self._encode(line) + "\n")
            else:
                self._output.root(self._encode(line) + "\n")
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
