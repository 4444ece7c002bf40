-- Change generations and settings (issue 11: a change through one replica
-- is seen by every replica).
--
-- change_generations holds one counter per kind of record that servers
-- keep a copy of in memory. Triggers bump a kind's counter inside the
-- transaction of the change itself, so a replica that reads a new counter
-- (one small SELECT, polled every `[storage] change_poll_ms`) finds the
-- change committed. Row-level triggers only where a table is hot
-- (certificates: a revocation, never an issuance, bumps).
CREATE TABLE change_generations (
    kind        text COLLATE "C" PRIMARY KEY,
    generation  bigint NOT NULL
);
INSERT INTO change_generations (kind, generation) VALUES
    ('cas', 0), ('settings', 0), ('tenants', 0), ('eab_keys', 0),
    ('api_keys', 0), ('est_users', 0), ('revocations', 0);

CREATE FUNCTION ironseal_bump_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_generations SET generation = generation + 1
     WHERE kind = TG_ARGV[0];
    RETURN NULL;
END
$$;

CREATE TRIGGER cas_generation AFTER INSERT OR UPDATE OR DELETE ON cas
    FOR EACH STATEMENT EXECUTE FUNCTION ironseal_bump_generation('cas');
CREATE TRIGGER tenants_generation AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION ironseal_bump_generation('tenants');
CREATE TRIGGER eab_keys_generation AFTER INSERT OR UPDATE OR DELETE ON eab_keys
    FOR EACH STATEMENT EXECUTE FUNCTION ironseal_bump_generation('eab_keys');
CREATE TRIGGER api_keys_generation AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION ironseal_bump_generation('api_keys');
CREATE TRIGGER est_users_generation AFTER INSERT OR UPDATE OR DELETE ON est_users
    FOR EACH STATEMENT EXECUTE FUNCTION ironseal_bump_generation('est_users');
CREATE TRIGGER certificates_revoked_generation AFTER UPDATE OF revoked ON certificates
    FOR EACH ROW WHEN (NEW.revoked AND NOT OLD.revoked)
    EXECUTE FUNCTION ironseal_bump_generation('revocations');
CREATE TRIGGER certificates_inserted_revoked_generation AFTER INSERT ON certificates
    FOR EACH ROW WHEN (NEW.revoked)
    EXECUTE FUNCTION ironseal_bump_generation('revocations');

-- Settings every replica must agree on (the issuing-CA pin, the SCEP RA
-- certificate and sealed key), with a version for compare-and-swap.
CREATE TABLE settings (
    name        text COLLATE "C" PRIMARY KEY,
    version     bigint NOT NULL,
    value       bytea NOT NULL
);
CREATE TRIGGER settings_generation AFTER INSERT OR UPDATE OR DELETE ON settings
    FOR EACH STATEMENT EXECUTE FUNCTION ironseal_bump_generation('settings');
