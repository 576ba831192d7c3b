"""The sandbox's Shopify schema must be a faithful subset of the real Admin API 2026-04 schema.

The local Shopify sandbox executes ``lnb_pipeline/sandbox/shopify/schema.graphql`` with graphql-core.
If that SDL drifted from Shopify's real schema (a field made nullable, an argument invented, a
required input field left out, ...), documents that pass against the sandbox could be rejected by
Shopify in production. These tests compare the subset, item by item, with the real introspection
schema kept in ``<repo root>/../shared/shopify-schema/``; the module is skipped when it is absent.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    ast_from_value,
    build_schema,
    parse,
    print_ast,
    validate,
    validate_schema,
)
from graphql.type import is_non_null_type
from helpers import REAL_SCHEMA_PATH, real_schema, sandbox_schema

BUILTIN_SCALARS = frozenset({"ID", "String", "Int", "Float", "Boolean"})
EXPECTED_ROOTS = {"query": "QueryRoot", "mutation": "Mutation", "subscription": None}

if not REAL_SCHEMA_PATH.is_file():
    pytest.skip(
        f"real Shopify Admin 2026-04 schema not found at {REAL_SCHEMA_PATH}; "
        "cannot check the sandbox subset against it",
        allow_module_level=True,
    )


def comparable_type_names(schema: GraphQLSchema) -> list[str]:
    """Named types to compare: everything except introspection types and builtin scalars."""
    return sorted(
        name for name in schema.type_map if not name.startswith("__") and name not in BUILTIN_SCALARS
    )


def kind_of(named_type: GraphQLNamedType) -> str:
    """A readable kind name (``GraphQLObjectType`` -> ``Object``)."""
    return type(named_type).__name__.removeprefix("GraphQL").removesuffix("Type")


def printed_default(value: Any, type_: Any) -> str | None:
    """Default value as GraphQL literal text; no default and an explicit null both give None."""
    if value is Undefined or value is None:
        return None
    node = ast_from_value(value, type_)
    return print_ast(node) if node is not None else repr(value)


def is_required(item: GraphQLArgument | GraphQLInputField) -> bool:
    """Required means non-null without a default: a document must then supply it."""
    return is_non_null_type(item.type) and item.default_value is Undefined


def argument_mismatches(
    where: str,
    sub_args: dict[str, GraphQLArgument] | dict[str, GraphQLInputField],
    real_args: dict[str, GraphQLArgument] | dict[str, GraphQLInputField],
    noun: str,
) -> list[str]:
    """Compare arguments (or input fields): existence, type, requiredness and default value.

    Every real *required* one must be in the subset too: a document valid on a subset that omits it
    would be rejected by Shopify.
    """
    problems: list[str] = []
    for name, sub in sub_args.items():
        real = real_args.get(name)
        if real is None:
            problems.append(f"{where}: {noun} '{name}' does not exist in the real schema")
            continue
        if str(sub.type) != str(real.type):
            problems.append(f"{where}: {noun} '{name}' has type {sub.type}, real type is {real.type}")
            continue
        if is_required(sub) != is_required(real):
            state = "required" if is_required(sub) else "optional"
            problems.append(f"{where}: {noun} '{name}' is {state} in the subset but not in the real schema")
        sub_default = printed_default(sub.default_value, sub.type)
        real_default = printed_default(real.default_value, real.type)
        if sub_default != real_default:
            problems.append(
                f"{where}: {noun} '{name}' default {sub_default or '(none)'} differs from "
                f"real default {real_default or '(none)'}"
            )
    for name, real in real_args.items():
        if is_required(real) and name not in sub_args:
            problems.append(f"{where}: required {noun} '{name}: {real.type}' is missing from the subset")
    return problems


def kind_mismatches(subset: GraphQLSchema, real: GraphQLSchema, type_name: str) -> list[str]:
    """The type must exist in the real schema with the same kind (object, input, enum, ...)."""
    sub_type = subset.get_type(type_name)
    real_type = real.get_type(type_name)
    if sub_type is None:
        return [f"{type_name}: not in the subset"]
    if real_type is None:
        return [f"{type_name}: does not exist in the real schema"]
    if kind_of(sub_type) != kind_of(real_type):
        return [f"{type_name}: is {kind_of(sub_type)} in the subset, {kind_of(real_type)} in the real schema"]
    return []


def field_mismatches(subset: GraphQLSchema, real: GraphQLSchema, type_name: str) -> list[str]:
    """Fields of objects/interfaces must exist with the same printed type and conforming arguments."""
    sub_type = subset.get_type(type_name)
    real_type = real.get_type(type_name)
    output_kinds = (GraphQLObjectType, GraphQLInterfaceType)
    if not isinstance(sub_type, output_kinds) or not isinstance(real_type, output_kinds):
        return []
    problems: list[str] = []
    for field_name, sub_field in sub_type.fields.items():
        real_field = real_type.fields.get(field_name)
        where = f"{type_name}.{field_name}"
        if real_field is None:
            problems.append(f"{where}: field does not exist in the real schema")
            continue
        if str(sub_field.type) != str(real_field.type):
            problems.append(f"{where}: type is {sub_field.type}, real type is {real_field.type}")
        problems += argument_mismatches(where, sub_field.args, real_field.args, "argument")
    return problems


def input_field_mismatches(subset: GraphQLSchema, real: GraphQLSchema, type_name: str) -> list[str]:
    """Input fields must exist with the same type; every real required input field must be present."""
    sub_type = subset.get_type(type_name)
    real_type = real.get_type(type_name)
    if not isinstance(sub_type, GraphQLInputObjectType) or not isinstance(real_type, GraphQLInputObjectType):
        return []
    return argument_mismatches(type_name, sub_type.fields, real_type.fields, "input field")


def enum_value_mismatches(subset: GraphQLSchema, real: GraphQLSchema, type_name: str) -> list[str]:
    """Every enum value of the subset must exist in the real enum (a subset of values is allowed)."""
    sub_type = subset.get_type(type_name)
    real_type = real.get_type(type_name)
    if not isinstance(sub_type, GraphQLEnumType) or not isinstance(real_type, GraphQLEnumType):
        return []
    return [
        f"{type_name}: enum value {value} does not exist in the real schema"
        for value in sub_type.values
        if value not in real_type.values
    ]


def abstract_type_mismatches(subset: GraphQLSchema, real: GraphQLSchema, type_name: str) -> list[str]:
    """Interfaces declared must be real ones (and real ones present in the subset declared); union
    members must be real members."""
    sub_type = subset.get_type(type_name)
    real_type = real.get_type(type_name)
    problems: list[str] = []
    implementing = (GraphQLObjectType, GraphQLInterfaceType)
    if isinstance(sub_type, implementing) and isinstance(real_type, implementing):
        sub_ifaces = {i.name for i in sub_type.interfaces}
        real_ifaces = {i.name for i in real_type.interfaces}
        problems += [
            f"{type_name}: implements {name} in the subset, but not in the real schema"
            for name in sorted(sub_ifaces - real_ifaces)
        ]
        problems += [
            f"{type_name}: real type implements {name}, which is in the subset, but the subset omits it"
            for name in sorted(real_ifaces - sub_ifaces)
            if isinstance(subset.get_type(name), GraphQLInterfaceType)
        ]
    if isinstance(sub_type, GraphQLUnionType) and isinstance(real_type, GraphQLUnionType):
        real_members = {t.name for t in real_type.types}
        problems += [
            f"{type_name}: union member {member.name} is not a member of the real union"
            for member in sub_type.types
            if member.name not in real_members
        ]
    return problems


def root_mismatches(subset: GraphQLSchema, real: GraphQLSchema) -> list[str]:
    """Root operation types must be QueryRoot / Mutation, as in the real schema."""
    problems: list[str] = []
    for operation, expected in EXPECTED_ROOTS.items():
        sub_root = getattr(subset, f"{operation}_type")
        real_root = getattr(real, f"{operation}_type")
        sub_name = sub_root.name if sub_root else None
        real_name = real_root.name if real_root else None
        if real_name != expected:
            problems.append(f"{operation}: real schema root is {real_name}, expected {expected}")
        if sub_name != real_name:
            problems.append(f"{operation}: subset root is {sub_name}, real root is {real_name}")
    return problems


def deprecation_uses(subset: GraphQLSchema, real: GraphQLSchema) -> list[str]:
    """Subset items (fields, arguments, input fields, enum values) that are deprecated in the real schema."""
    problems: list[str] = []
    for type_name in comparable_type_names(subset):
        sub_type = subset.get_type(type_name)
        real_type = real.get_type(type_name)
        if isinstance(sub_type, (GraphQLObjectType, GraphQLInterfaceType)) and isinstance(
            real_type, (GraphQLObjectType, GraphQLInterfaceType)
        ):
            for field_name, sub_field in sub_type.fields.items():
                real_field = real_type.fields.get(field_name)
                if real_field is None:
                    continue
                if real_field.deprecation_reason:
                    problems.append(f"{type_name}.{field_name}: deprecated ({real_field.deprecation_reason})")
                for arg_name in sub_field.args:
                    real_arg = real_field.args.get(arg_name)
                    if real_arg is not None and real_arg.deprecation_reason:
                        problems.append(f"{type_name}.{field_name}({arg_name}): deprecated")
        elif isinstance(sub_type, GraphQLInputObjectType) and isinstance(real_type, GraphQLInputObjectType):
            for field_name in sub_type.fields:
                real_field = real_type.fields.get(field_name)
                if real_field is not None and real_field.deprecation_reason:
                    problems.append(f"{type_name}.{field_name}: deprecated ({real_field.deprecation_reason})")
        elif isinstance(sub_type, GraphQLEnumType) and isinstance(real_type, GraphQLEnumType):
            for value_name in sub_type.values:
                real_value = real_type.values.get(value_name)
                if real_value is not None and real_value.deprecation_reason:
                    problems.append(f"{type_name}.{value_name}: deprecated ({real_value.deprecation_reason})")
    return problems


def all_mismatches(subset: GraphQLSchema, real: GraphQLSchema) -> list[str]:
    """Every conformance problem of ``subset`` against ``real``, in one list."""
    problems = root_mismatches(subset, real)
    for type_name in comparable_type_names(subset):
        kind_problems = kind_mismatches(subset, real, type_name)
        problems += kind_problems
        if kind_problems:
            continue
        checks = (field_mismatches, input_field_mismatches, enum_value_mismatches, abstract_type_mismatches)
        for check in checks:
            problems += check(subset, real, type_name)
    return problems + deprecation_uses(subset, real)


def report(problems: list[str]) -> str:
    """One mismatch per line, for readable assertion messages."""
    return f"{len(problems)} mismatch(es) against Shopify Admin 2026-04:\n  " + "\n  ".join(problems)


SUBSET_TYPE_NAMES = comparable_type_names(sandbox_schema())


def test_subset_schema_is_a_valid_graphql_schema() -> None:
    """The sandbox builds its executable schema from this SDL; it must be valid on its own."""
    errors = validate_schema(sandbox_schema())
    assert not errors, "\n".join(str(error) for error in errors)


def test_root_types_match() -> None:
    """Shopify names its roots QueryRoot and Mutation; documents with named operations rely on it."""
    problems = root_mismatches(sandbox_schema(), real_schema())
    assert not problems, report(problems)


@pytest.mark.parametrize("type_name", SUBSET_TYPE_NAMES)
def test_type_exists_with_same_kind(type_name: str) -> None:
    """A type invented or re-kinded in the sandbox would let invalid documents through."""
    problems = kind_mismatches(sandbox_schema(), real_schema(), type_name)
    assert not problems, report(problems)


@pytest.mark.parametrize("type_name", SUBSET_TYPE_NAMES)
def test_fields_and_arguments_match(type_name: str) -> None:
    """Same field types (nullability, lists) and arguments, so results and validation match Shopify."""
    problems = field_mismatches(sandbox_schema(), real_schema(), type_name)
    assert not problems, report(problems)


@pytest.mark.parametrize("type_name", SUBSET_TYPE_NAMES)
def test_input_fields_match(type_name: str) -> None:
    """Input objects must accept exactly what Shopify accepts and require what Shopify requires."""
    problems = input_field_mismatches(sandbox_schema(), real_schema(), type_name)
    assert not problems, report(problems)


@pytest.mark.parametrize("type_name", SUBSET_TYPE_NAMES)
def test_enum_values_exist(type_name: str) -> None:
    """An enum value unknown to Shopify would be accepted by the sandbox and rejected in production."""
    problems = enum_value_mismatches(sandbox_schema(), real_schema(), type_name)
    assert not problems, report(problems)


@pytest.mark.parametrize("type_name", SUBSET_TYPE_NAMES)
def test_interfaces_and_union_members_match(type_name: str) -> None:
    """Fragments on interfaces/unions must be valid in the same places as on Shopify."""
    problems = abstract_type_mismatches(sandbox_schema(), real_schema(), type_name)
    assert not problems, report(problems)


def test_no_deprecated_members() -> None:
    """The pipeline must not be steered towards fields Shopify is phasing out."""
    problems = deprecation_uses(sandbox_schema(), real_schema())
    assert not problems, report(problems)


REPRESENTATIVE_DOCUMENTS = {
    "variant_stock_page": """
        { productVariants(first: 10, query: "sku:A") { nodes { id sku barcode inventoryItem { id tracked
          inventoryLevels(first: 5) { nodes { location { id name }
            quantities(names: ["available", "on_hand"]) { name quantity } } } } }
          pageInfo { hasNextPage endCursor } } }
    """,
    "order_create": """
        mutation CreateOrder($order: OrderCreateOrderInput!) {
          orderCreate(
            order: $order, options: {inventoryBehaviour: DECREMENT_OBEYING_POLICY, sendReceipt: false}
          ) {
            order { id name sourceIdentifier totalPriceSet { shopMoney { amount currencyCode } } }
            userErrors { field message code } } }
    """,
    "bulk_run_query": """
        mutation { bulkOperationRunQuery(query: "{ productVariants { edges { node { id } } } }") {
          bulkOperation { id status } userErrors { field message code } } }
    """,
    "custom_ids_and_scopes": """
        query($reference: String!) {
          currentAppInstallation { accessScopes { handle } }
          shop { currencyCode enabledPresentmentCurrencies plan { partnerDevelopment } }
          metafieldDefinitions(ownerType: ORDER, namespace: "lenewblack", key: "order_reference", first: 1) {
            nodes { id name namespace key ownerType type { name category } } }
          orderByIdentifier(identifier: {customId: {namespace: "lenewblack", key: "order_reference",
                                                    value: $reference}}) {
            id presentmentCurrencyCode metafield(namespace: "lenewblack", key: "order_reference") { value type }
            totalPriceSet { shopMoney { amount } presentmentMoney { amount currencyCode } } }
        }
    """,
    "order_create_in_a_presentment_currency": """
        mutation { orderCreate(order: {
            presentmentCurrency: USD, processedAt: "2026-01-05T10:00:00Z",
            metafields: [{namespace: "lenewblack", key: "order_reference", value: "LNB-1", type: "id"}],
            lineItems: [{variantId: "gid://shopify/ProductVariant/1", quantity: 1, priceSet: {
              shopMoney: {amount: "45.00", currencyCode: EUR}, presentmentMoney: {amount: "49.50", currencyCode: USD}}}]
          }) { order { id } userErrors { field message code } } }
    """,
}


@pytest.mark.parametrize("name", sorted(REPRESENTATIVE_DOCUMENTS))
def test_representative_documents_validate_on_both(name: str) -> None:
    """Documents the connector sends must validate on the sandbox subset and on the real schema alike."""
    document = parse(REPRESENTATIVE_DOCUMENTS[name])
    for label, schema in (("subset", sandbox_schema()), ("real", real_schema())):
        errors = validate(schema, document)
        assert not errors, f"{label}: " + "; ".join(error.message for error in errors)


BROKEN_SUBSET_SDL = """
schema { query: QueryRoot mutation: Mutation }
interface Node { id: ID! }
type QueryRoot {
  productVariants(first: Int, sortBy: String): ProductVariantConnection
  inventoryItem: InventoryItem
}
type Mutation { bulkOperationRunQuery(query: String!, groupObjects: Boolean!): BulkOperationRunQueryPayload }
type BulkOperationRunQueryPayload { userErrors: [BulkOperationUserError!]! }
type BulkOperationUserError { message: String! }
type ProductVariantConnection { nodes: [ProductVariant!]! }
type ProductVariant { id: ID! sku: String! inventoryItem: InventoryItem! madeUp: Int }
type InventoryItem implements Node { id: ID! tracked: Boolean! }
input MoneyInput { amount: String! }
input OrderCreateOptionsInput { sendReceipt: Boolean! }
enum CurrencyCode { EUR XYZ }
type Count { count: Int! }
scalar Decimal
union PurchasingEntity = Count
type Invented { id: ID! }
"""


def test_comparison_detects_mismatches() -> None:
    """Guard against a vacuous checker: a deliberately broken subset must be reported item by item."""
    problems = "\n".join(all_mismatches(build_schema(BROKEN_SUBSET_SDL), real_schema()))
    expected_fragments = [
        "QueryRoot.productVariants: type is ProductVariantConnection, real type is ProductVariantConnection!",
        "QueryRoot.productVariants: argument 'sortBy' does not exist",
        "QueryRoot.inventoryItem: required argument 'id: ID!' is missing",
        "Mutation.bulkOperationRunQuery: argument 'groupObjects' is required in the subset",
        "ProductVariant.sku: type is String!, real type is String",
        "ProductVariant.madeUp: field does not exist",
        "ProductVariant: real type implements Node",
        "MoneyInput: input field 'amount' has type String!, real type is Decimal!",
        "MoneyInput: required input field 'currencyCode: CurrencyCode!' is missing",
        "OrderCreateOptionsInput: input field 'sendReceipt' has type Boolean!, real type is Boolean",
        "CurrencyCode: enum value XYZ does not exist",
        "PurchasingEntity: union member Count is not a member",
        "Invented: does not exist in the real schema",
    ]
    missing = [fragment for fragment in expected_fragments if fragment not in problems]
    assert not missing, f"checker did not report: {missing}\nit reported:\n{problems}"
