"""What the database itself enforces and keeps, in one readable place.

- postgres.py: the PostgreSQL functions and triggers as they stand after the last migration
  (counters kept by triggers, append-only guards, frozen releases, the claim's room re-count).
  tests/annotation/db/test_db_definitions.py checks every definition against the migrated database,
  so this file never drifts from what migrations built. A migration that changes one takes the new
  text from here (CREATE OR REPLACE ...); the migrations already applied keep their own copies, as
  history.
- sqlite.py: the SQLite demo's triggers with the same effect, made after every migrate.
"""
