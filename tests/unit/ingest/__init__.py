"""Unit tests of connlog.ingest (no database)."""
