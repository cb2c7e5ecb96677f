-- The SQLite store (src/store/sqlite.rs). Times are INTEGER unix microseconds (UTC). Amounts
-- are INTEGER minor units. JSON columns hold serde_json of the domain types. STRICT tables,
-- so a value of the wrong type is refused on write instead of being read back wrong.

-- One row per refund. `bank_account` holds the full account number (it is needed to submit
-- the refund); only events and API answers carry the masked view.
CREATE TABLE refunds (
    id                 TEXT    NOT NULL PRIMARY KEY,
    tenant_id          TEXT    NOT NULL,
    request_id         TEXT    NOT NULL,
    provider           TEXT    NOT NULL,
    payment_id         TEXT    NOT NULL,
    payment_method_id  TEXT    NOT NULL,
    invoice_id         TEXT    NOT NULL,
    currency           TEXT    NOT NULL CHECK (length(currency) = 3),
    -- A refund of zero or less would lower the sum the over-refund guard adds up.
    amount_minor       INTEGER NOT NULL CHECK (amount_minor > 0),
    status             TEXT    NOT NULL CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCEEDED',
                                                          'FAILED', 'CANCELED', 'REQUIRES_REVIEW')),
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
    -- One refund per request key, ever: a second owner of the same key cannot add another.
    UNIQUE (tenant_id, request_id)
) STRICT;

-- The over-refund guard and held_amount add up one payment's refunds.
CREATE INDEX refunds_by_payment ON refunds (provider, payment_id);
-- ListRefunds: a tenant's refunds, newest first, keyset on (created_at, id).
CREATE INDEX refunds_by_tenant_newest ON refunds (tenant_id, created_at DESC, id DESC);
-- The worker's queue: only refunds that still have something to learn.
CREATE INDEX refunds_due ON refunds (next_check_at) WHERE next_check_at IS NOT NULL;
-- Webhooks name the provider's refund id.
CREATE INDEX refunds_by_provider_refund_id ON refunds (provider, provider_refund_id)
    WHERE provider_refund_id IS NOT NULL;

-- Every visible change of every refund. AUTOINCREMENT: a sequence is never handed out twice,
-- even after the newest rows are deleted (plain rowids would reuse them).
CREATE TABLE refund_events (
    sequence        INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id       TEXT    NOT NULL REFERENCES refunds (id),
    tenant_id       TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    previous_status TEXT,
    -- serde_json of Refund::public_view() after the change (account number masked).
    snapshot        TEXT    NOT NULL CHECK (json_valid(snapshot)),
    event_time      INTEGER NOT NULL
) STRICT;

CREATE INDEX refund_events_by_tenant ON refund_events (tenant_id, sequence);
CREATE INDEX refund_events_by_refund ON refund_events (refund_id, sequence);

-- CreateRefund idempotency keys. An open key (completed = 0) is leased to one caller until
-- locked_until; a completed key replays its refund or its error.
CREATE TABLE idempotency_keys (
    tenant_id    TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    refund_id    TEXT             REFERENCES refunds (id),
    -- serde_json of the ApiError a repeat gets.
    error        TEXT             CHECK (error IS NULL OR json_valid(error)),
    completed    INTEGER NOT NULL CHECK (completed IN (0, 1)),
    locked_until INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    -- A key linked to a refund stores an error only when that refund FAILED (the provider
    -- refused it, or it never reached the provider): nothing was refunded, and the caller
    -- got that error the first time. See requests.rs.
    PRIMARY KEY (tenant_id, request_id)
) STRICT;

-- Random keys the gateway makes for itself (page-token signing, ...).
CREATE TABLE gateway_secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
