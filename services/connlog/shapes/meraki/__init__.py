"""Cisco Meraki's Dashboard API shape: ``connectivityEvents`` and the
organisation and network look-ups of Meraki's SDK; pulled by vendor sync."""

# Meraki's API-key header: a connlog key in it is taken on the Meraki and the
# Mojo paths (gateway/openapi.yaml: merakiApiKey).
API_KEY_HEADER = "x-cisco-meraki-api-key"
