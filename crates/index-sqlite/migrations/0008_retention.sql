-- Yunying catalog, schema version 8 (SQLite): retention per exam, legal
-- holds and the approved deletion workflow.
--
-- A study's retention follows from its patient class and the patient's
-- visits at its institution (yunying_index::retention); it is recomputed
-- at ingest and whenever visit data arrives. The columns retention_until
-- (YYYYMMDD, the last day it must be kept; NULL: no end date yet) and
-- legal_hold (0/1) exist since version 1; retention_basis says why, and is
-- NULL while the retention has not been computed (studies stored before
-- this version, until `yunying retention recompute`).
ALTER TABLE study ADD COLUMN patient_class TEXT NOT NULL DEFAULT 'O';
ALTER TABLE study ADD COLUMN retention_basis TEXT;
CREATE INDEX study_retention_due ON study(retention_until) WHERE legal_hold = 0 AND retention_until IS NOT NULL;
CREATE INDEX study_encounter ON study(encounter_id);
CREATE INDEX encounter_patient ON encounter(patient_id, institution_id);

-- Every legal hold, current and released (kept after the study is gone).
CREATE TABLE legal_hold (
    id INTEGER PRIMARY KEY,
    study_uid TEXT NOT NULL,
    reason TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed_at INTEGER NOT NULL,
    released_by TEXT,
    released_at INTEGER,
    release_reason TEXT
);
CREATE INDEX legal_hold_study ON legal_hold(study_uid, id);
CREATE UNIQUE INDEX legal_hold_current ON legal_hold(study_uid) WHERE released_at IS NULL;

-- Deletion is never automatic: a request (state requested, approved,
-- rejected, done) is decided by a second person.
CREATE TABLE deletion_request (
    id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    decision_note TEXT,
    done_at INTEGER
);
CREATE INDEX deletion_request_state ON deletion_request(state, id);

-- The studies of a request: pending, deleted or skipped (with why).
CREATE TABLE deletion_request_study (
    request_id INTEGER NOT NULL REFERENCES deletion_request(id),
    study_uid TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    detail TEXT,
    PRIMARY KEY (request_id, study_uid)
);

-- What is kept of a deleted study: the rejection (IOCM reason code 113039
-- DCM "Data Retention Policy Expired") and its objects, until every one is
-- removed from storage (blobs_removed_at).
CREATE TABLE deleted_study (
    id INTEGER PRIMARY KEY,
    study_uid TEXT NOT NULL,
    request_id INTEGER NOT NULL REFERENCES deletion_request(id),
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    patient_id INTEGER REFERENCES patient(id),
    pat_id TEXT NOT NULL,
    pat_issuer TEXT NOT NULL,
    study_date TEXT NOT NULL DEFAULT '',
    patient_class TEXT NOT NULL,
    retention_until TEXT,
    num_instances INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    reason_code TEXT NOT NULL,
    reason_scheme TEXT NOT NULL,
    reason_meaning TEXT NOT NULL,
    deleted_by TEXT NOT NULL,
    deleted_at INTEGER NOT NULL,
    blobs TEXT NOT NULL,
    blobs_removed_at INTEGER
);
CREATE INDEX deleted_study_uid ON deleted_study(study_uid);
CREATE INDEX deleted_study_request ON deleted_study(request_id);
