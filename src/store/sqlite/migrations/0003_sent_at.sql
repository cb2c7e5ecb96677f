-- When the latest submission attempt of a refund was recorded, just before it was sent
-- (unix microseconds). Another attempt may start only once this one is surely over.
ALTER TABLE refunds ADD COLUMN sent_at INTEGER;
