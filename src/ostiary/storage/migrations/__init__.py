"""Alembic migrations of the SQL schema (``storage/schema.py``), applied by ``initialize()``."""
