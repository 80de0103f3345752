"""Vendor record conversions."""
