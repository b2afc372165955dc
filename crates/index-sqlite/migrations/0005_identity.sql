-- Yunying catalog, schema version 5 (SQLite): identity, access and audit.
-- Users (argon2id password hashes, encrypted TOTP secrets, lockout state),
-- browser sessions and machine credentials stored by hash only, grants that
-- open a study beyond its institution, patients' personal data held as
-- ciphertext with keyed blind indexes, and the append-only, hash-chained
-- audit trail (with one sealed anchor per chain).

ALTER TABLE institution ADD COLUMN regional INTEGER NOT NULL DEFAULT 0 CHECK (regional IN (0, 1));

CREATE TABLE app_user (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    institution_id INTEGER REFERENCES institution(id),
    roles TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT NOT NULL,
    password_changed_at INTEGER NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    totp_secret TEXT,
    totp_enabled INTEGER NOT NULL DEFAULT 0,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    disabled INTEGER NOT NULL DEFAULT 0,
    phone TEXT,
    phone_index TEXT,
    last_login_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX app_user_phone ON app_user(phone_index);

CREATE TABLE user_session (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES app_user(id),
    csrf_hash TEXT NOT NULL,
    second_factor INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX user_session_user ON user_session(user_id);

CREATE TABLE credential (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('token', 'client', 'access')),
    public_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    institution_id INTEGER REFERENCES institution(id),
    actions TEXT NOT NULL DEFAULT '[]',
    parent_id INTEGER REFERENCES credential(id),
    expires_at INTEGER,
    revoked_at INTEGER,
    created_by TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX credential_parent ON credential(parent_id);

CREATE TABLE access_grant (
    id INTEGER PRIMARY KEY,
    study_uid TEXT NOT NULL,
    kind TEXT NOT NULL,
    user_id INTEGER REFERENCES app_user(id),
    institution_id INTEGER REFERENCES institution(id),
    expires_at INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    CHECK ((user_id IS NULL) <> (institution_id IS NULL))
);
CREATE INDEX access_grant_user ON access_grant(user_id);
CREATE INDEX access_grant_institution ON access_grant(institution_id);
CREATE INDEX access_grant_study ON access_grant(study_uid);

CREATE TABLE patient_secret (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    kind TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    blind_index TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (patient_id, kind, blind_index)
);
CREATE INDEX patient_secret_lookup ON patient_secret(kind, blind_index);

CREATE TABLE audit_event (
    chain TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    patient_id TEXT,
    studies TEXT NOT NULL DEFAULT '',
    event TEXT NOT NULL,
    key_id TEXT NOT NULL,
    prev_mac TEXT NOT NULL,
    mac TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_event_at ON audit_event(at);
CREATE INDEX audit_event_actor ON audit_event(actor_id, at);
CREATE INDEX audit_event_patient ON audit_event(patient_id, at);

CREATE TABLE audit_anchor (
    chain TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    mac TEXT NOT NULL,
    key_id TEXT NOT NULL,
    anchor_mac TEXT NOT NULL
);

-- The trail is append-only for the application: rows cannot be changed or
-- removed through SQL without first dropping these triggers (and the chain
-- still shows it).
CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
