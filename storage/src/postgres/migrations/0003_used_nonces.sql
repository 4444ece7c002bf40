-- ACME nonces redeemed by any replica (issue 11): a nonce is a sealed
-- token that any replica holding the KEK can open; redemption inserts its
-- random part here once, so a replay on any replica is badNonce. Rows are
-- deleted once the nonce has expired (`expires`, Unix seconds).
CREATE TABLE used_nonces (
    id          bytea PRIMARY KEY,
    expires     bigint NOT NULL
);
CREATE INDEX used_nonces_expires ON used_nonces (expires);
