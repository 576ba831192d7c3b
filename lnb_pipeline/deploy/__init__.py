"""Deployment: the Dagster instance profiles (``dagster.<profile>.yaml``) and the operator's tools."""
