"""Every GraphQL document the project sends to Shopify, defined once.

A test validates each of them against Shopify's real 2026-04 schema.
"""

from __future__ import annotations

from functools import cache

QUANTITY_NAMES = ("available", "on_hand", "committed")
"""The quantities the stock flow reads; ``available`` is available-to-sell and may be negative."""

_QUANTITY_LIST = ", ".join(f'"{name}"' for name in QUANTITY_NAMES)

SHOP_QUERY = """
query Shop {
  shop { id name myshopifyDomain currencyCode plan { shopifyPlus partnerDevelopment publicDisplayName } }
}
"""

LOCATIONS_QUERY = """
query Locations($first: Int!, $after: String) {
  locations(first: $first, after: $after, includeInactive: true) {
    nodes { id name isActive }
    pageInfo { hasNextPage endCursor }
  }
}
"""

VARIANTS_COUNT_QUERY = """
query VariantsCount($query: String) {
  productVariantsCount(query: $query, limit: null) { count precision }
}
"""

VARIANT_STOCK_PAGE_QUERY = f"""
query VariantStock($first: Int!, $after: String, $query: String, $levels: Int!) {{
  productVariants(first: $first, after: $after, query: $query) {{
    nodes {{
      id sku barcode displayName updatedAt
      product {{ id status }}
      inventoryItem {{
        id tracked
        inventoryLevels(first: $levels) {{
          nodes {{ location {{ id name }} quantities(names: [{_QUANTITY_LIST}]) {{ name quantity }} }}
        }}
      }}
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""

VARIANT_STOCK_BULK_QUERY = f"""
{{
  productVariants {{
    edges {{
      node {{
        id sku barcode displayName updatedAt
        product {{ id status }}
        inventoryItem {{
          id tracked
          inventoryLevels {{
            edges {{ node {{ location {{ id name }} quantities(names: [{_QUANTITY_LIST}]) {{ name quantity }} }} }}
          }}
        }}
      }}
    }}
  }}
}}
"""

CHANGED_LEVELS_QUERY = """
query ChangedLevels($location: ID!, $first: Int!, $after: String, $query: String!) {
  location(id: $location) {
    inventoryLevels(first: $first, after: $after, query: $query) {
      nodes { id updatedAt quantities(names: ["available"]) { name quantity } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
"""The incremental stock path: a location's levels changed since a moment (the level's gid names its item)."""

BULK_RUN_QUERY_MUTATION = """
mutation BulkRunQuery($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

BULK_OPERATION_QUERY = """
query BulkOperation($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode objectCount rootObjectCount fileSize url partialDataUrl
  }
}
"""

BULK_CANCEL_MUTATION = """
mutation BulkCancel($id: ID!) {
  bulkOperationCancel(id: $id) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""

ORDER_FIELDS = "id name sourceIdentifier sourceName tags createdAt cancelledAt"
"""What the order flow reads of a Shopify order, however it finds it."""

ORDERS_BY_SOURCE_QUERY = f"""
query OrdersBySource($query: String!, $first: Int!, $after: String) {{
  orders(first: $first, after: $after, query: $query) {{
    nodes {{ {ORDER_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""


@cache
def orders_by_custom_id_query(count: int) -> str:
    """One query looking up ``count`` orders by custom id (``$v0`` … as values), aliased ``o0`` …:
    exact and read-your-writes, unlike search."""
    values = ", ".join(f"$v{i}: String!" for i in range(count))
    lookups = "\n".join(
        f"  o{i}: orderByIdentifier(identifier: {{customId: {{namespace: $namespace, key: $key, value: $v{i}}}}}) "
        f"{{ {ORDER_FIELDS} }}" for i in range(count))
    return f"query OrdersByCustomId($namespace: String!, $key: String!, {values}) {{\n{lookups}\n}}\n"


METAFIELD_DEFINITIONS_QUERY = """
query MetafieldDefinitions($ownerType: MetafieldOwnerType!, $namespace: String!, $key: String!) {
  metafieldDefinitions(first: 5, ownerType: $ownerType, namespace: $namespace, key: $key) {
    nodes { id name namespace key type { name } }
  }
}
"""

ACCESS_SCOPES_QUERY = """
query AccessScopes {
  currentAppInstallation { accessScopes { handle } }
}
"""

ORDER_CREATE_MUTATION = f"""
mutation OrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {{
  orderCreate(order: $order, options: $options) {{
    order {{ {ORDER_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""

CUSTOMER_BY_METAFIELD_QUERY = """
query CustomerByMetafield($identifier: CustomerIdentifierInput!) {
  customerByIdentifier(identifier: $identifier) { id defaultEmailAddress { emailAddress } }
}
"""

COMPANY_BY_EXTERNAL_ID_QUERY = """
query CompanyByExternalId($query: String!) {
  companies(first: 2, query: $query) {
    nodes {
      id name externalId
      locations(first: 1) { nodes { id } }
      mainContact { customer { id defaultEmailAddress { emailAddress } } }
    }
  }
}
"""

RETAILER_LOOKUP_BATCH = 50
"""Retailer references looked up per query by the readiness report."""


def _customers_by_custom_id_query(count: int) -> str:
    lookups = "\n".join(
        f"  c{i}: customerByIdentifier(identifier: {{customId: {{namespace: $namespace, key: $key, value: $v{i}}}}}) "
        "{ id }" for i in range(count))
    values = ", ".join(f"$v{i}: String!" for i in range(count))
    return f"query CustomersByCustomId($namespace: String!, $key: String!, {values}) {{\n{lookups}\n}}\n"


CUSTOMERS_BY_CUSTOM_ID_QUERY = _customers_by_custom_id_query(RETAILER_LOOKUP_BATCH)
"""``RETAILER_LOOKUP_BATCH`` customers by custom id (``$v0`` … as values, aliased ``c0`` …): one query of
fixed shape, so the document validated is the one sent; a short last batch repeats a value."""

COMPANIES_BY_EXTERNAL_IDS_QUERY = """
query CompaniesByExternalIds($query: String!, $first: Int!, $after: String) {
  companies(first: $first, after: $after, query: $query) {
    nodes { id externalId locations(first: 1) { nodes { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

METAFIELD_DEFINITION_CREATE_MUTATION = """
mutation MetafieldDefinitionCreate($definition: MetafieldDefinitionInput!) {
  metafieldDefinitionCreate(definition: $definition) {
    createdDefinition { id name namespace key type { name } }
    userErrors { field message code }
  }
}
"""

ORDER_TEST_FLAG_BATCH = 50
"""Orders whose ``test`` flag one ``ORDERS_TEST_FLAG_QUERY`` reads."""


def _orders_test_flag_query(count: int) -> str:
    values = ", ".join(f"$v{i}: ID!" for i in range(count))
    lookups = "\n".join(f"  o{i}: order(id: $v{i}) {{ id test }}" for i in range(count))
    return f"query OrdersTestFlag({values}) {{\n{lookups}\n}}\n"


ORDERS_TEST_FLAG_QUERY = _orders_test_flag_query(ORDER_TEST_FLAG_BATCH)
"""``ORDER_TEST_FLAG_BATCH`` orders by id (``$v0`` …, aliased ``o0`` …) with their ``test`` flag: whether
Shopify really made a test order. One query of fixed shape; a short last batch repeats an id."""

ALL_DOCUMENTS = {
    "SHOP_QUERY": SHOP_QUERY,
    "LOCATIONS_QUERY": LOCATIONS_QUERY,
    "VARIANTS_COUNT_QUERY": VARIANTS_COUNT_QUERY,
    "VARIANT_STOCK_PAGE_QUERY": VARIANT_STOCK_PAGE_QUERY,
    "VARIANT_STOCK_BULK_QUERY": VARIANT_STOCK_BULK_QUERY,
    "CHANGED_LEVELS_QUERY": CHANGED_LEVELS_QUERY,
    "BULK_RUN_QUERY_MUTATION": BULK_RUN_QUERY_MUTATION,
    "BULK_OPERATION_QUERY": BULK_OPERATION_QUERY,
    "BULK_CANCEL_MUTATION": BULK_CANCEL_MUTATION,
    "ORDERS_BY_SOURCE_QUERY": ORDERS_BY_SOURCE_QUERY,
    "orders_by_custom_id_query(1)": orders_by_custom_id_query(1),
    "orders_by_custom_id_query(50)": orders_by_custom_id_query(50),
    "METAFIELD_DEFINITIONS_QUERY": METAFIELD_DEFINITIONS_QUERY,
    "ACCESS_SCOPES_QUERY": ACCESS_SCOPES_QUERY,
    "ORDER_CREATE_MUTATION": ORDER_CREATE_MUTATION,
    "CUSTOMER_BY_METAFIELD_QUERY": CUSTOMER_BY_METAFIELD_QUERY,
    "COMPANY_BY_EXTERNAL_ID_QUERY": COMPANY_BY_EXTERNAL_ID_QUERY,
    "CUSTOMERS_BY_CUSTOM_ID_QUERY": CUSTOMERS_BY_CUSTOM_ID_QUERY,
    "COMPANIES_BY_EXTERNAL_IDS_QUERY": COMPANIES_BY_EXTERNAL_IDS_QUERY,
    "METAFIELD_DEFINITION_CREATE_MUTATION": METAFIELD_DEFINITION_CREATE_MUTATION,
    "ORDERS_TEST_FLAG_QUERY": ORDERS_TEST_FLAG_QUERY,
}
"""Name to document, for the schema validation test."""
