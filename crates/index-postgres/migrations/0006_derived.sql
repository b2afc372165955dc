-- Yunying catalog, schema version 6 (PostgreSQL): the derive queue. An instance
-- that wants a derived copy (HTJ2K frames for streaming viewers, made in the
-- background after ingest) is marked in the transaction that indexes it; a
-- worker claims marked instances with a lease (derive_due) and records the
-- outcome. Derived data is a cache: `yunying derive --rebuild` marks
-- instances again.

-- 0 not wanted, 1 wanted (due at derive_due), 2 made, 3 failed (given up).
ALTER TABLE instance ADD COLUMN derive_state BIGINT NOT NULL DEFAULT 0;
ALTER TABLE instance ADD COLUMN derive_due BIGINT NOT NULL DEFAULT 0;
ALTER TABLE instance ADD COLUMN derive_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE instance ADD COLUMN derive_error TEXT;
CREATE INDEX instance_derive_due ON instance(derive_due) WHERE derive_state = 1;
