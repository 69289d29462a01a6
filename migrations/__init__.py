"""Alembic migrations (shipped inside the package so `tass migrate` works when installed)."""
