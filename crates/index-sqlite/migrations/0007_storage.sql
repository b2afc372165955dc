-- Yunying catalog, schema version 7 (sqlite): storage tiers and their jobs.
--
-- The cloud copy queue is kept as columns of the instance row, like the
-- derive queue (migration 6): an instance received while a cloud tier is
-- configured (and whose exam is recent enough for it) is marked in the
-- transaction that indexes it; a worker on any node claims marked rows with
-- a lease (cloud_due) and records the outcome. cloud_state:
-- 0 not wanted, 1 wanted (due at cloud_due), 2 copied (at cloud_at),
-- 3 failed (given up), 4 removed from the cloud tier by the lifecycle job.
ALTER TABLE instance ADD COLUMN cloud_state INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instance ADD COLUMN cloud_due INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instance ADD COLUMN cloud_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instance ADD COLUMN cloud_error TEXT;
ALTER TABLE instance ADD COLUMN cloud_at INTEGER;
CREATE INDEX instance_cloud_due ON instance(cloud_due) WHERE cloud_state = 1;
CREATE INDEX instance_cloud_copied ON instance(study_id) WHERE cloud_state = 2;

-- Jobs that must run on one node at a time (lifecycle, scrubbing): a node
-- holds the lease until `until` (unix ms) and renews it while it works.
CREATE TABLE job_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);

-- Long storage tasks (migrations between stores, scrubbing runs), resumable
-- from their cursor (the last instance row id done).
CREATE TABLE storage_task (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT,
    state TEXT NOT NULL,
    cursor_id INTEGER NOT NULL DEFAULT 0,
    last_id INTEGER NOT NULL DEFAULT 0,
    objects INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    problems INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    last_error TEXT
);
CREATE INDEX storage_task_kind ON storage_task(kind, id);

-- Objects found damaged or missing (by scrubbing, `yunying verify`, a
-- migration), until resolved (repaired from another tier, or by hand).
CREATE TABLE blob_problem (
    id INTEGER PRIMARY KEY,
    store TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    instance_id INTEGER,
    problem TEXT NOT NULL,
    detail TEXT NOT NULL,
    found_at INTEGER NOT NULL,
    resolved_at INTEGER,
    resolution TEXT
);
CREATE INDEX blob_problem_open ON blob_problem(found_at) WHERE resolved_at IS NULL;
