-- Operators and approvals:
-- - every event records who made the change (`actor`) and why (`note`); events recorded
--   before this migration read back as actor 'gateway', note 'recorded before actors were
--   kept' (the gateway does not know who made them);
-- - a refund records the actor whose call created it (`created_by`), so the key that asked
--   for a refund above the approval limit cannot approve it itself;
-- - a refund may be REQUIRES_APPROVAL: the status CHECK of `refunds` is widened.
--
-- SQLite cannot change a CHECK constraint in place, and this migration runs inside one
-- transaction, where foreign keys cannot be switched off. So the tables are rebuilt in an
-- order that never leaves a row pointing at a missing refund: new `refunds`, then new
-- `refund_events` and `idempotency_keys` pointing at the new `refunds`, copies of every
-- row, the old children dropped, then the old `refunds` (no child left), and the new tables
-- take the old names (renaming the new `refunds` renames the references to it). The AUTOINCREMENT counter of `refund_events` is
-- carried over, so no sequence is ever handed out twice.

CREATE TABLE refunds_next (
    id                 TEXT    NOT NULL PRIMARY KEY,
    tenant_id          TEXT    NOT NULL,
    request_id         TEXT    NOT NULL,
    provider           TEXT    NOT NULL,
    payment_id         TEXT    NOT NULL,
    payment_method_id  TEXT    NOT NULL,
    invoice_id         TEXT    NOT NULL,
    currency           TEXT    NOT NULL CHECK (length(currency) = 3),
    amount_minor       INTEGER NOT NULL CHECK (amount_minor > 0),
    status             TEXT    NOT NULL CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCEEDED',
                                                          'FAILED', 'CANCELED', 'REQUIRES_REVIEW',
                                                          'REQUIRES_APPROVAL')),
    provider_refund_id TEXT,
    provider_status    TEXT,
    reason             TEXT    NOT NULL,
    description        TEXT    NOT NULL,
    metadata           TEXT    NOT NULL CHECK (json_valid(metadata)),
    bank_account       TEXT             CHECK (bank_account IS NULL OR json_valid(bank_account)),
    failure            TEXT             CHECK (failure IS NULL OR json_valid(failure)),
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL,
    submission         TEXT    NOT NULL,
    next_check_at      INTEGER,
    check_attempts     INTEGER NOT NULL,
    leased             INTEGER NOT NULL DEFAULT 0 CHECK (leased IN (0, 1)),
    sent_at            INTEGER,
    -- The actor whose call created the refund; NULL for refunds recorded before it was kept.
    created_by         TEXT,
    UNIQUE (tenant_id, request_id)
) STRICT;

INSERT INTO refunds_next (id, tenant_id, request_id, provider, payment_id, payment_method_id,
    invoice_id, currency, amount_minor, status, provider_refund_id, provider_status, reason,
    description, metadata, bank_account, failure, created_at, updated_at, version, submission,
    next_check_at, check_attempts, leased, sent_at, created_by)
SELECT id, tenant_id, request_id, provider, payment_id, payment_method_id, invoice_id,
    currency, amount_minor, status, provider_refund_id, provider_status, reason, description,
    metadata, bank_account, failure, created_at, updated_at, version, submission,
    next_check_at, check_attempts, leased, sent_at, NULL
FROM refunds;

CREATE TABLE refund_events_next (
    sequence        INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id       TEXT    NOT NULL REFERENCES refunds_next (id),
    tenant_id       TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    previous_status TEXT,
    snapshot        TEXT    NOT NULL CHECK (json_valid(snapshot)),
    event_time      INTEGER NOT NULL,
    -- Who made the change (`caller:<key id>`, `operator:<key id>`, `caller:open`, `webhook`,
    -- `worker`, `gateway`) and why.
    actor           TEXT    NOT NULL,
    note            TEXT    NOT NULL
) STRICT;

INSERT INTO refund_events_next (sequence, refund_id, tenant_id, provider, status,
    previous_status, snapshot, event_time, actor, note)
SELECT sequence, refund_id, tenant_id, provider, status, previous_status, snapshot,
    event_time, 'gateway', 'recorded before actors were kept'
FROM refund_events;

CREATE TABLE idempotency_keys_next (
    tenant_id    TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    refund_id    TEXT             REFERENCES refunds_next (id),
    error        TEXT             CHECK (error IS NULL OR json_valid(error)),
    completed    INTEGER NOT NULL CHECK (completed IN (0, 1)),
    locked_until INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, request_id)
) STRICT;

INSERT INTO idempotency_keys_next
SELECT tenant_id, request_id, fingerprint, refund_id, error, completed, locked_until, created_at
FROM idempotency_keys;

-- The highest sequence ever handed out, even if its row is gone.
CREATE TEMP TABLE carried_sequence AS
    SELECT COALESCE(MAX(seq), 0) AS seq FROM sqlite_sequence WHERE name = 'refund_events';

DROP TABLE refund_events;
DROP TABLE idempotency_keys;
DROP TABLE refunds;

ALTER TABLE refunds_next RENAME TO refunds;
ALTER TABLE refund_events_next RENAME TO refund_events;
ALTER TABLE idempotency_keys_next RENAME TO idempotency_keys;

DELETE FROM sqlite_sequence WHERE name = 'refund_events';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'refund_events', MAX(seq) FROM (
        SELECT seq FROM carried_sequence
        UNION ALL SELECT COALESCE(MAX(sequence), 0) FROM refund_events
    );
DROP TABLE carried_sequence;

CREATE INDEX refunds_by_payment ON refunds (provider, payment_id);
CREATE INDEX refunds_by_tenant_newest ON refunds (tenant_id, created_at DESC, id DESC);
CREATE INDEX refunds_due ON refunds (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX refunds_by_provider_refund_id ON refunds (provider, provider_refund_id)
    WHERE provider_refund_id IS NOT NULL;
CREATE INDEX refund_events_by_tenant ON refund_events (tenant_id, sequence);
CREATE INDEX refund_events_by_refund ON refund_events (refund_id, sequence);
