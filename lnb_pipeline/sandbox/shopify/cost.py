"""Shopify's calculated query cost and the leaky bucket that meters it.

Cost model (Shopify's published approximation): scalars and enums 0, each object 1, a connection
2 + ``first`` x (cost of one node), a mutation 10. The requested cost is charged up front and the
difference to the actual cost (counted from the nodes really returned) is refunded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
)
from graphql.utilities import value_from_ast_untyped

MAX_QUERY_COST = 1000
MUTATION_COST = 10
CONNECTION_BASE_COST = 2


@dataclass(frozen=True)
class Plan:
    name: str
    restore_rate: float
    bucket_size: float


PLANS = {
    "standard": Plan("standard", 100.0, 2000.0),
    "advanced": Plan("advanced", 200.0, 4000.0),
    "plus": Plan("plus", 1000.0, 20000.0),
    "enterprise": Plan("enterprise", 2000.0, 40000.0),
}


def is_connection(type_name: str) -> bool:
    return type_name.endswith("Connection")


class QueryCost:
    """Walks an operation with its schema types to price it, before or after execution."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 variables: dict[str, Any]) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def requested(self, operation: OperationDefinitionNode) -> int:
        root = self._root_type(operation)
        if operation.operation.value == "mutation":
            return MUTATION_COST * len(self._fields(operation.selection_set, root))
        return self._selection_cost(operation.selection_set, root, None)

    def actual(self, operation: OperationDefinitionNode, data: dict[str, Any] | None) -> int:
        root = self._root_type(operation)
        if operation.operation.value == "mutation":
            return MUTATION_COST * len(self._fields(operation.selection_set, root))
        return self._selection_cost(operation.selection_set, root, data or {}, measured=True)

    def _root_type(self, operation: OperationDefinitionNode) -> GraphQLObjectType:
        root = self.schema.mutation_type if operation.operation.value == "mutation" else self.schema.query_type
        assert root is not None
        return root

    def _fields(self, selection_set: SelectionSetNode | None, parent: Any) -> list[FieldNode]:
        """Fields of a selection with fragments flattened (fragment type conditions included)."""
        fields: list[FieldNode] = []
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                fields.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                fields.extend(self._fields(selection.selection_set, parent))
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in self.fragments:
                fields.extend(self._fields(self.fragments[selection.name.value].selection_set, parent))
        return fields

    def _argument(self, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        return None

    def _selection_cost(self, selection_set: SelectionSetNode | None, parent: Any, data: Any,
                        measured: bool = False) -> int:
        total = 0
        for node in self._fields(selection_set, parent):
            name = node.name.value
            if name.startswith("__"):
                continue
            field_type = self._field_type(parent, name)
            if field_type is None or is_leaf_type(field_type):
                continue
            key = node.alias.value if node.alias else name
            value = data.get(key) if measured and isinstance(data, dict) else None
            if measured and value is None:
                continue
            if is_connection(field_type.name):
                total += self._connection_cost(node, field_type, value, measured)
            elif measured and isinstance(value, list):
                total += 1 + max((self._selection_cost(node.selection_set, field_type, v, True) for v in value),
                                 default=0)
            else:
                total += 1 + self._selection_cost(node.selection_set, field_type, value, measured)
        return total

    def _connection_cost(self, node: FieldNode, connection: Any, value: Any, measured: bool) -> int:
        node_type = self._field_type(connection, "nodes")
        if not measured:
            first = self._argument(node, "first") or self._argument(node, "last") or 0
            per_node = 1 + sum(self._node_selection_cost(f, connection, node_type, None) for f in
                               self._fields(node.selection_set, connection))
            return CONNECTION_BASE_COST + int(first) * per_node
        total = CONNECTION_BASE_COST
        for field in self._fields(node.selection_set, connection):
            key = field.alias.value if field.alias else field.name.value
            items = value.get(key) if isinstance(value, dict) else None
            if field.name.value in ("nodes", "edges") and isinstance(items, list):
                total += sum(1 + self._node_selection_cost(field, connection, node_type, item) for item in items)
        return total

    def _node_selection_cost(self, field: FieldNode, connection: Any, node_type: Any, item: Any) -> int:
        """Cost of one node's selection, whether reached by ``nodes`` or ``edges { node }``."""
        measured = item is not None
        if field.name.value == "nodes":
            return self._selection_cost(field.selection_set, node_type, item, measured)
        if field.name.value == "edges":
            edge_type = self._field_type(connection, "edges")
            for inner in self._fields(field.selection_set, edge_type):
                if inner.name.value == "node":
                    key = inner.alias.value if inner.alias else "node"
                    inner_item = item.get(key) if measured and isinstance(item, dict) else None
                    return self._selection_cost(inner.selection_set, node_type, inner_item, measured)
        return 0

    def _field_type(self, parent: Any, name: str) -> Any:
        fields = getattr(parent, "fields", None)
        if not fields or name not in fields:
            return None
        return get_named_type(fields[name].type)


class LeakyBucket:
    """Per-shop cost bucket: refills at the restore rate, never above its size."""

    def __init__(self, plan: Plan, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.set_plan(plan)

    def set_plan(self, plan: Plan) -> None:
        with self._lock:
            self.plan = plan
            self._available = plan.bucket_size
            self._updated = self._clock()

    def _refill(self) -> None:
        now = self._clock()
        self._available = min(self.plan.bucket_size, self._available + (now - self._updated) * self.plan.restore_rate)
        self._updated = now

    def try_take(self, cost: int) -> bool:
        with self._lock:
            self._refill()
            if cost > self._available:
                return False
            self._available -= cost
            return True

    def empty(self) -> None:
        """Drain the bucket, as a burst of other requests would; it refills from now on."""
        with self._lock:
            self._available = 0.0
            self._updated = self._clock()

    def refund(self, amount: int) -> None:
        with self._lock:
            self._refill()
            self._available = min(self.plan.bucket_size, self._available + amount)

    def status(self) -> dict[str, Any]:
        with self._lock:
            self._refill()
            return {
                "maximumAvailable": self.plan.bucket_size,
                "currentlyAvailable": int(self._available),
                "restoreRate": self.plan.restore_rate,
            }
