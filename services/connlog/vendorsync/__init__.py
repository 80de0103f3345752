"""The vendor-sync service: pulls Meraki and Mojo connection events into
connlog through the ingest service, exactly once."""
