"""Every GraphQL document the project sends validates against Shopify's real 2026-04 schema.

A document that only passes against the sandbox would fail in production on the first call, so each
one in ``ALL_DOCUMENTS`` is validated against the real introspection schema kept in
``<repo root>/../shared/shopify-schema/`` (skipped, saying so, when it is absent) and must not use a
deprecated field or argument, which Shopify removes a few versions later. Each must also validate
against the sandbox's SDL subset, or the tests run against the sandbox could not send it.
"""

from __future__ import annotations

import pytest
from graphql import (
    GraphQLError,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    parse,
    validate,
    visit,
)
from graphql.language import ArgumentNode, FieldNode
from helpers import REAL_SCHEMA_PATH, real_schema, sandbox_schema

from lnb_pipeline.clients import shopify_queries
from lnb_pipeline.clients.shopify_queries import ALL_DOCUMENTS

needs_real_schema = pytest.mark.skipif(
    not REAL_SCHEMA_PATH.is_file(),
    reason=f"real Shopify Admin 2026-04 schema not found at {REAL_SCHEMA_PATH}; cannot validate documents",
)


def validation_errors(schema: GraphQLSchema, document: str) -> list[str]:
    return [error.message for error in validate(schema, parse(document))]


class DeprecationFinder(Visitor):
    """Collects every deprecated field and argument a document selects, as ``Type.field(arg)``."""

    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.found: list[str] = []

    def enter_field(self, node: FieldNode, *_: object) -> None:
        field_def, parent = self.type_info.get_field_def(), self.type_info.get_parent_type()
        if field_def is not None and field_def.deprecation_reason is not None:
            self.found.append(f"{parent}.{node.name.value}: {field_def.deprecation_reason}")

    def enter_argument(self, node: ArgumentNode, *_: object) -> None:
        argument = self.type_info.get_argument()
        if argument is not None and argument.deprecation_reason is not None:
            self.found.append(f"argument {node.name.value}: {argument.deprecation_reason}")


def deprecated_uses(schema: GraphQLSchema, document: str) -> list[str]:
    type_info = TypeInfo(schema)
    finder = DeprecationFinder(type_info)
    visit(parse(document), TypeInfoVisitor(type_info, finder))
    return finder.found


@needs_real_schema
@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_document_validates_against_the_real_schema(name: str) -> None:
    assert validation_errors(real_schema(), ALL_DOCUMENTS[name]) == []


@needs_real_schema
@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_document_uses_nothing_deprecated_in_the_real_schema(name: str) -> None:
    assert deprecated_uses(real_schema(), ALL_DOCUMENTS[name]) == []


@needs_real_schema
def test_deprecation_check_catches_a_deprecated_field() -> None:
    """``currentBulkOperation`` is deprecated in 2026-04: the check must be able to fail."""
    found = deprecated_uses(real_schema(), "{ currentBulkOperation { id } }")
    assert [use.split(":")[0] for use in found] == ["QueryRoot.currentBulkOperation"]


@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_document_validates_against_the_sandbox_subset(name: str) -> None:
    assert validation_errors(sandbox_schema(), ALL_DOCUMENTS[name]) == []


def test_all_documents_lists_every_document_of_the_module() -> None:
    """A document added to shopify_queries but not to ALL_DOCUMENTS would escape validation."""
    documents = {}
    for name, value in vars(shopify_queries).items():
        if name.startswith("__") or not isinstance(value, str):
            continue
        try:
            parse(value)
        except GraphQLError:
            continue
        documents[name] = value
    generated = {name: value for name, value in ALL_DOCUMENTS.items() if name not in documents}
    assert {name: value for name, value in ALL_DOCUMENTS.items() if name in documents} == documents
    assert generated == {f"orders_by_custom_id_query({count})": shopify_queries.orders_by_custom_id_query(count)
                         for count in (1, 50)}
