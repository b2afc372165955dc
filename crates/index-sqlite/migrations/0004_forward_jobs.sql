-- Yunying catalog, schema version 4 (SQLite): the queue of instances to
-- forward to other AEs by routing rules. A job is created in the same
-- transaction as the instance it forwards, so a stored instance is never
-- forgotten; a worker claims due jobs with a lease and deletes them once sent.

CREATE TABLE forward_job (
    id INTEGER PRIMARY KEY,
    instance_id INTEGER NOT NULL REFERENCES instance(id),
    destination TEXT NOT NULL,
    -- 'pending' (to send, when next_attempt_at is due) or 'failed' (refused by
    -- the receiver; kept for the operator).
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX forward_job_due ON forward_job(state, next_attempt_at);
CREATE INDEX forward_job_destination ON forward_job(destination, state);
