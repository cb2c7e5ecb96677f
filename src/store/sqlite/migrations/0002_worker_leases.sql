-- Whether `next_check_at` is a worker's lease (set by claim_due) rather than a scheduled
-- check. One process owns a SQLite file, so when it starts, every lease left in the file
-- belongs to a run of its own that has ended: it takes those checks back at once instead of
-- waiting for the leases to run out.
ALTER TABLE refunds ADD COLUMN leased INTEGER NOT NULL DEFAULT 0 CHECK (leased IN (0, 1));
