"""Helpers for bench/run (pgbench harness: direct PostgreSQL vs PgBouncer vs pgmux)."""
