"""Every GraphQL document the project sends to Shopify, defined once.

A test validates each of them against Shopify's real 2026-04 schema.
"""

from __future__ import annotations

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
      id sku barcode updatedAt
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
        id sku barcode updatedAt
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

LOCATION_LEVELS_CHANGED_QUERY = f"""
query LocationLevelsChanged($location: ID!, $first: Int!, $after: String, $query: String) {{
  location(id: $location) {{
    id
    inventoryLevels(first: $first, after: $after, query: $query) {{
      nodes {{
        updatedAt
        quantities(names: [{_QUANTITY_LIST}]) {{ name quantity }}
        item {{ id sku tracked variants(first: 1) {{ nodes {{ id barcode sku }} }} }}
      }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""

BULK_RUN_QUERY_MUTATION = """
mutation BulkRunQuery($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: true) {
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

ALL_DOCUMENTS = {
    "SHOP_QUERY": SHOP_QUERY,
    "LOCATIONS_QUERY": LOCATIONS_QUERY,
    "VARIANTS_COUNT_QUERY": VARIANTS_COUNT_QUERY,
    "VARIANT_STOCK_PAGE_QUERY": VARIANT_STOCK_PAGE_QUERY,
    "VARIANT_STOCK_BULK_QUERY": VARIANT_STOCK_BULK_QUERY,
    "LOCATION_LEVELS_CHANGED_QUERY": LOCATION_LEVELS_CHANGED_QUERY,
    "BULK_RUN_QUERY_MUTATION": BULK_RUN_QUERY_MUTATION,
    "BULK_OPERATION_QUERY": BULK_OPERATION_QUERY,
    "BULK_CANCEL_MUTATION": BULK_CANCEL_MUTATION,
}
"""Name to document, for the schema validation test."""
