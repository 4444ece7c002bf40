-- Unfinished orders and authorizations per account (issue 10 item 4):
-- newOrder counts them against the per-account caps. Partial indexes, so a
-- count reads only the account's unfinished rows, not its history. The
-- predicates must stay word for word those of postgres/pending.rs.
CREATE INDEX orders_pending ON orders (account_id)
    WHERE (doc::jsonb->>'status') IN ('pending', 'ready');
CREATE INDEX authzs_pending ON authzs (account_id)
    WHERE (doc::jsonb->>'status') = 'pending';

-- Rate-limit buckets shared by every replica (issue 11): the GCRA
-- theoretical arrival time (ns since the Unix epoch) of one limit and key,
-- updated by one statement per check (postgres/rate_buckets.rs). Rows whose
-- time has passed equal empty buckets and are deleted.
CREATE TABLE rate_buckets (
    key         text COLLATE "C" PRIMARY KEY,
    tat_ns      bigint NOT NULL
);
CREATE INDEX rate_buckets_tat ON rate_buckets (tat_ns);
