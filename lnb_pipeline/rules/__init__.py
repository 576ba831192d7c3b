"""Business rules as pure polars functions: no Dagster, no HTTP, so each rule is testable on its own."""
