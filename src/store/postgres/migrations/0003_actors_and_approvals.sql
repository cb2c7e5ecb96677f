-- Operators and approvals (as the SQLite store's 0004):
-- - every event records who made the change (`actor`) and why (`note`); events recorded
--   before this migration read back as actor 'gateway', note 'recorded before actors were
--   kept';
-- - a refund records the actor whose call created it (`created_by`; NULL before);
-- - a refund may be REQUIRES_APPROVAL: the status CHECK of `refunds` is widened.
ALTER TABLE refund_events ADD COLUMN actor TEXT NOT NULL DEFAULT 'gateway';
ALTER TABLE refund_events ADD COLUMN note TEXT NOT NULL DEFAULT 'recorded before actors were kept';
ALTER TABLE refund_events ALTER COLUMN actor DROP DEFAULT;
ALTER TABLE refund_events ALTER COLUMN note DROP DEFAULT;

ALTER TABLE refunds ADD COLUMN created_by TEXT;

ALTER TABLE refunds DROP CONSTRAINT refunds_status_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_status_check
    CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCEEDED', 'FAILED', 'CANCELED',
                      'REQUIRES_REVIEW', 'REQUIRES_APPROVAL'));
