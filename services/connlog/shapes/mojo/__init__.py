"""Mojo Networks' WiFi API V5 shape: the API-key login and client connection
logs; pulled by vendor sync."""

# The cookie of a Mojo API-key login's session: taken on the Mojo and the
# Meraki paths (gateway/openapi.yaml: mojoSession).
SESSION_COOKIE = "JSESSIONID"
