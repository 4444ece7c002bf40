-- Leases (issue 11): a named lease with its holder (a replica id), fencing
-- token and expiry (ns since the Unix epoch). Acquire, renew and release
-- are one statement each (postgres/leases.rs); a released lease keeps its
-- row (expires_ns = -2^63) so its token keeps counting.
CREATE TABLE leases (
    name        text COLLATE "C" PRIMARY KEY,
    holder      text NOT NULL,
    token       bigint NOT NULL,
    expires_ns  bigint NOT NULL
);
CREATE INDEX leases_expires ON leases (expires_ns);

-- Signed CRLs, built by the holder of the CA's `crl:<ca id>` lease and
-- served by every replica (postgres/crls.rs). part: -1 the full CRL, k
-- shard k. generation: the CA's crl_generations value the CRL was built
-- from; a revocation bumps it, which makes every stored CRL of the CA stale.
CREATE TABLE crls (
    ca_id           text COLLATE "C" NOT NULL,
    part            bigint NOT NULL,
    number          bigint NOT NULL,
    generation      bigint NOT NULL,
    this_update_ns  bigint NOT NULL,
    next_update_ns  bigint NOT NULL,
    der             bytea NOT NULL,
    PRIMARY KEY (ca_id, part)
);
CREATE TABLE crl_generations (
    ca_id       text COLLATE "C" PRIMARY KEY,
    generation  bigint NOT NULL
);

-- Delegated OCSP responders, one per CA, issued by the holder of the CA's
-- `ocsp-responder:<ca id>` lease; the key inside `doc` is sealed under the KEK.
CREATE TABLE ocsp_responders (
    ca_id   text COLLATE "C" PRIMARY KEY,
    doc     text NOT NULL
);
