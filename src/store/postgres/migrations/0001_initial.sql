-- The PostgreSQL store (src/store/postgres.rs). The same columns and encodings as the SQLite
-- store: times are BIGINT unix microseconds (UTC), amounts BIGINT minor units, JSON columns
-- serde_json text of the domain types. JSON is kept as TEXT checked to parse as `json`
-- rather than as JSONB, so it reads back byte for byte (JSONB reorders keys and refuses
-- "\u0000"). Identifiers use the "C" collation: byte order, as SQLite sorts them, whatever
-- the database's locale, so keyset pages and tie-breaks agree between backends.

-- One row per refund. `bank_account` holds the full account number (it is needed to submit
-- the refund); only events and API answers carry the masked view.
CREATE TABLE refunds (
    id                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id          TEXT COLLATE "C" NOT NULL,
    request_id         TEXT COLLATE "C" NOT NULL,
    provider           TEXT COLLATE "C" NOT NULL,
    payment_id         TEXT COLLATE "C" NOT NULL,
    payment_method_id  TEXT    NOT NULL,
    invoice_id         TEXT    NOT NULL,
    currency           TEXT    NOT NULL CHECK (length(currency) = 3),
    -- A refund of zero or less would lower the sum the over-refund guard adds up.
    amount_minor       BIGINT  NOT NULL CHECK (amount_minor > 0),
    status             TEXT    NOT NULL CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCEEDED',
                                                          'FAILED', 'CANCELED', 'REQUIRES_REVIEW')),
    provider_refund_id TEXT COLLATE "C",
    provider_status    TEXT,
    reason             TEXT    NOT NULL,
    description        TEXT    NOT NULL,
    metadata           TEXT    NOT NULL CHECK (metadata::json IS NOT NULL),
    bank_account       TEXT             CHECK (bank_account IS NULL OR bank_account::json IS NOT NULL),
    failure            TEXT             CHECK (failure IS NULL OR failure::json IS NOT NULL),
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    version            BIGINT  NOT NULL,
    submission         TEXT    NOT NULL,
    next_check_at      BIGINT,
    check_attempts     INTEGER NOT NULL,
    -- One refund per request key, ever: a second owner of the same key cannot add another.
    UNIQUE (tenant_id, request_id)
);

-- The over-refund guard and held_amount add up one payment's refunds.
CREATE INDEX refunds_by_payment ON refunds (provider, payment_id);
-- ListRefunds: a tenant's refunds, newest first, keyset on (created_at, id).
CREATE INDEX refunds_by_tenant_newest ON refunds (tenant_id, created_at DESC, id DESC);
-- The worker's queue: only refunds that still have something to learn.
CREATE INDEX refunds_due ON refunds (next_check_at, id) WHERE next_check_at IS NOT NULL;
-- Webhooks name the provider's refund id.
CREATE INDEX refunds_by_provider_refund_id ON refunds (provider, provider_refund_id)
    WHERE provider_refund_id IS NOT NULL;

-- One row per (provider account, payment) ever refunded: insert_refund locks it (SELECT ...
-- FOR UPDATE) before adding up the payment's refunds, so the sum and the insert of one
-- replica cannot interleave with another replica's. It holds no data; it is the lock.
CREATE TABLE payment_locks (
    provider   TEXT COLLATE "C" NOT NULL,
    payment_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (provider, payment_id)
);

-- The last event sequence handed out: exactly one row. Every event-writing transaction
-- increments it (UPDATE ... RETURNING) just before inserting its event and holds the row
-- lock until it commits, so event-writing transactions commit one at a time in sequence
-- order: sequences are gap-free (a rollback returns its number) and become visible in
-- order (no reader ever sees N+1 before N). See "Events in order" in postgres.rs.
CREATE TABLE event_counter (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    last     BIGINT  NOT NULL CHECK (last >= 0)
);
INSERT INTO event_counter (only_row, last) VALUES (TRUE, 0);

-- Every visible change of every refund, numbered by event_counter.
CREATE TABLE refund_events (
    sequence        BIGINT  NOT NULL PRIMARY KEY CHECK (sequence > 0),
    refund_id       TEXT COLLATE "C" NOT NULL REFERENCES refunds (id),
    tenant_id       TEXT COLLATE "C" NOT NULL,
    provider        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    previous_status TEXT,
    -- serde_json of Refund::public_view() after the change (account number masked).
    snapshot        TEXT    NOT NULL CHECK (snapshot::json IS NOT NULL),
    event_time      BIGINT  NOT NULL
);

CREATE INDEX refund_events_by_tenant ON refund_events (tenant_id, sequence);
CREATE INDEX refund_events_by_refund ON refund_events (refund_id, sequence);

-- CreateRefund idempotency keys. An open key (completed = FALSE) is leased to one caller
-- until locked_until; a completed key replays its refund or its error.
CREATE TABLE idempotency_keys (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    request_id   TEXT COLLATE "C" NOT NULL,
    fingerprint  TEXT    NOT NULL,
    refund_id    TEXT COLLATE "C" REFERENCES refunds (id),
    -- serde_json of the ApiError a repeat gets.
    error        TEXT             CHECK (error IS NULL OR error::json IS NOT NULL),
    completed    BOOLEAN NOT NULL,
    locked_until BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    -- A key linked to a refund stores an error only when that refund FAILED (the provider
    -- refused it, or it never reached the provider): nothing was refunded, and the caller
    -- got that error the first time. See requests.rs.
    PRIMARY KEY (tenant_id, request_id)
);

-- Random keys the gateway makes for itself (page-token signing, ...).
CREATE TABLE gateway_secrets (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);
