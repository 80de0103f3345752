"""Shared core of every connlog service: settings, logging, database, auth,
metrics and server bootstrap."""
