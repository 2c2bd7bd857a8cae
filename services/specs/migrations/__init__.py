"""Alembic history of the spec service (version table ``alembic_version_specs``)."""
