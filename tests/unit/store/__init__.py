"""Unit tests of connlog.store (no database)."""
