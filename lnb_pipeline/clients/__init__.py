"""Plain API clients (no Dagster import): sessions, retries, pagination, pacing, typed errors."""
