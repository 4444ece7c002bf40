-- Keys of the audit log (issue 10 item 14): the MAC key and the checkpoint
-- signing key, sealed under the KEK by the server. One row per name,
-- created once (INSERT … ON CONFLICT DO NOTHING), never replaced.
CREATE TABLE audit_keys (
    name        text COLLATE "C" PRIMARY KEY,
    doc         text NOT NULL
);
