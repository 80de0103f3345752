"""Zequenze's gate API shape: devices post their connection logs (write only)."""
