-- ironseal PostgreSQL schema, version 1 (issue 11).
--
-- Every record is its JSON document (the same serde JSON the sled backend
-- stores) in a `doc text` column; the fields that uniqueness rules and
-- lookups need are repeated in real columns with constraints and indexes.
-- Key columns use the "C" collation so ordering is bytewise, as in sled.
-- Timestamps used for ordering are Unix nanoseconds (bigint).

CREATE TABLE accounts (
    id          text COLLATE "C" PRIMARY KEY,
    thumbprint  text COLLATE "C" NOT NULL UNIQUE,
    doc         text NOT NULL
);

CREATE TABLE orders (
    id          text COLLATE "C" PRIMARY KEY,
    account_id  text COLLATE "C" NOT NULL,
    created_ns  bigint NOT NULL,
    doc         text NOT NULL
);
CREATE INDEX orders_by_account ON orders (account_id, created_ns, id);

CREATE TABLE authzs (
    id          text COLLATE "C" PRIMARY KEY,
    account_id  text COLLATE "C" NOT NULL,
    kind        text COLLATE "C" NOT NULL,
    wildcard    boolean NOT NULL,
    value       text COLLATE "C" NOT NULL,
    doc         text NOT NULL
);
CREATE INDEX authzs_by_identifier ON authzs (account_id, kind, wildcard, value);

CREATE TABLE certificates (
    serial      text COLLATE "C" PRIMARY KEY,
    issuer_id   text COLLATE "C" NOT NULL,
    revoked     boolean NOT NULL,
    doc         text NOT NULL
);
CREATE INDEX certificates_revoked ON certificates (issuer_id, serial) WHERE revoked;

CREATE TABLE blocked_keys (
    public_key_sha256 text COLLATE "C" PRIMARY KEY
);

CREATE TABLE cas (
    id          text COLLATE "C" PRIMARY KEY,
    created_ns  bigint NOT NULL,
    doc         text NOT NULL
);

CREATE TABLE crl_numbers (
    ca_id       text COLLATE "C" PRIMARY KEY,
    last        bigint NOT NULL
);

CREATE TABLE api_keys (
    id          text COLLATE "C" PRIMARY KEY,
    created_ns  bigint NOT NULL,
    doc         text NOT NULL
);

CREATE TABLE audit_log (
    seq         bigint PRIMARY KEY,
    doc         text NOT NULL
);
-- The head (last seq and its hash), one row, locked by every append so
-- appends are serialised; seq 0 means the log is empty.
CREATE TABLE audit_head (
    id          smallint PRIMARY KEY CHECK (id = 1),
    seq         bigint NOT NULL,
    hash        text
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, NULL);

CREATE TABLE tenants (
    id          text COLLATE "C" PRIMARY KEY,
    doc         text NOT NULL
);

CREATE TABLE eab_keys (
    kid         text COLLATE "C" PRIMARY KEY,
    tenant_id   text COLLATE "C" NOT NULL,
    doc         text NOT NULL
);
CREATE INDEX eab_keys_by_tenant ON eab_keys (tenant_id, kid);

CREATE TABLE est_users (
    username    text COLLATE "C" PRIMARY KEY,
    tenant_id   text COLLATE "C",
    doc         text NOT NULL
);
CREATE INDEX est_users_by_tenant ON est_users (tenant_id, username);

CREATE TABLE approvals (
    id            text COLLATE "C" PRIMARY KEY,
    status        text COLLATE "C" NOT NULL,
    requested_ns  bigint NOT NULL,
    doc           text NOT NULL
);
CREATE INDEX approvals_by_status ON approvals (status, requested_ns, id);

CREATE TABLE scep_transactions (
    transaction_id text COLLATE "C" PRIMARY KEY,
    doc            text NOT NULL
);
