-- Key scopes (docs/security.md): the vendor-sync service's own key, the shape
-- a device key writes through, and a notification whenever a key changes.

-- A sync_service key belongs to no tenant: the ingest service scopes each of
-- its calls to the tenant of the sync source the call names. Every other
-- role keeps exactly one tenant.
ALTER TABLE api_keys ALTER COLUMN tenant_ref DROP NOT NULL;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('viewer', 'operator', 'administrator', 'super_user', 'device', 'sync_service'));
ALTER TABLE api_keys ADD CONSTRAINT api_keys_tenant_check CHECK ((role = 'sync_service') = (tenant_ref IS NULL));

-- The REST shape a device key writes through (connlog.shapes.registry name);
-- only device keys have one.
ALTER TABLE api_keys ADD COLUMN shape text;
UPDATE api_keys SET shape = 'zequenze' WHERE role = 'device';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_shape_check CHECK ((role = 'device') = (shape IS NOT NULL));

-- Every process listens on this channel and forgets a key the moment it is
-- revoked, changed or deleted (by any path: the CLI, a deleted sync source, a
-- deleted tenant), so a revocation takes effect everywhere at once.
CREATE FUNCTION connlog_notify_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('connlog_key_revoked', OLD.key_id);
    ELSE
        PERFORM pg_notify('connlog_key_revoked', NEW.key_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_changed AFTER UPDATE ON api_keys
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION connlog_notify_key_changed();
CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION connlog_notify_key_changed();
