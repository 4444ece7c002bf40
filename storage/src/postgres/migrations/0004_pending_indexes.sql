-- Unfinished orders and authorizations per account (issue 10 item 4):
-- newOrder counts them against the per-account caps. Partial indexes, so a
-- count reads only the account's unfinished rows, not its history. The
-- predicates must stay word for word those of postgres/pending.rs.
CREATE INDEX orders_pending ON orders (account_id)
    WHERE (doc::jsonb->>'status') IN ('pending', 'ready');
CREATE INDEX authzs_pending ON authzs (account_id)
    WHERE (doc::jsonb->>'status') = 'pending';
