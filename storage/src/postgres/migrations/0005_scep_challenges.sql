-- One-time SCEP challenges issued through the admin API (issue 8): keyed
-- by the SHA-256 (hex) of the password, never the password itself. A
-- redemption locks the row (SELECT ... FOR UPDATE), so of concurrent
-- redemptions on any replica exactly one wins.
CREATE TABLE scep_challenges (
    challenge_hash  text COLLATE "C" PRIMARY KEY,
    tenant_id       text COLLATE "C",
    doc             text NOT NULL
);
CREATE INDEX scep_challenges_by_tenant ON scep_challenges (tenant_id, challenge_hash);
