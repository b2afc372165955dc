-- Yunying catalog, schema version 1 (SQLite).
-- The region's model: institutions as tenants, patients keyed by (issuer, ID)
-- and linked to a master record, encounters, studies, series, versioned instances.

CREATE TABLE institution (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL DEFAULT '',
    patient_id_issuer TEXT NOT NULL UNIQUE,
    ae_titles TEXT NOT NULL DEFAULT '[]',
    unit_price_fen INTEGER,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);

CREATE TABLE patient (
    id INTEGER PRIMARY KEY,
    merged_into INTEGER REFERENCES patient(id),
    name TEXT,
    birth_date TEXT,
    sex TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE patient_identifier (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    issuer TEXT NOT NULL,
    value TEXT NOT NULL,
    kind TEXT NOT NULL,
    institution_id INTEGER REFERENCES institution(id),
    created_at INTEGER NOT NULL,
    UNIQUE (kind, issuer, value)
);
CREATE INDEX patient_identifier_patient ON patient_identifier(patient_id);

CREATE TABLE encounter (
    id INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    patient_id INTEGER REFERENCES patient(id),
    visit_number TEXT NOT NULL,
    kind TEXT,
    admitted_at TEXT,
    discharged_at TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (institution_id, visit_number)
);

CREATE TABLE study (
    id INTEGER PRIMARY KEY,
    study_uid TEXT NOT NULL UNIQUE,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    patient_identifier_id INTEGER NOT NULL REFERENCES patient_identifier(id),
    encounter_id INTEGER REFERENCES encounter(id),
    pat_name TEXT,
    pn_alpha TEXT NOT NULL DEFAULT '',
    pn_ideo TEXT NOT NULL DEFAULT '',
    pn_phon TEXT NOT NULL DEFAULT '',
    pn_words TEXT NOT NULL DEFAULT '',
    pat_id TEXT NOT NULL,
    pat_issuer TEXT NOT NULL,
    pat_birth_date TEXT,
    pat_sex TEXT,
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    accession_number TEXT,
    study_id TEXT,
    description TEXT,
    ref_name TEXT,
    ref_alpha TEXT NOT NULL DEFAULT '',
    ref_ideo TEXT NOT NULL DEFAULT '',
    ref_phon TEXT NOT NULL DEFAULT '',
    ref_words TEXT NOT NULL DEFAULT '',
    visit_number TEXT,
    visit_type TEXT,
    modalities_bar TEXT NOT NULL DEFAULT '',
    num_series INTEGER NOT NULL DEFAULT 0,
    num_instances INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'receiving',
    charge_status TEXT,
    retention_until TEXT,
    legal_hold INTEGER NOT NULL DEFAULT 0,
    attrs TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX study_order ON study(study_date DESC, study_time DESC, id DESC);
CREATE INDEX study_pat_id ON study(pat_id, pat_issuer);
CREATE INDEX study_accession ON study(accession_number);
CREATE INDEX study_patient ON study(patient_id);
CREATE INDEX study_institution ON study(institution_id, study_date);

CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    series_uid TEXT NOT NULL UNIQUE,
    study_id INTEGER NOT NULL REFERENCES study(id),
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    modality TEXT,
    series_number INTEGER,
    description TEXT,
    body_part TEXT,
    series_date TEXT NOT NULL DEFAULT '',
    series_time TEXT NOT NULL DEFAULT '',
    station_name TEXT,
    num_instances INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    attrs TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX series_study ON series(study_id, series_number);

CREATE TABLE instance (
    id INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL REFERENCES series(id),
    study_id INTEGER NOT NULL REFERENCES study(id),
    sop_uid TEXT NOT NULL,
    version INTEGER NOT NULL,
    current INTEGER NOT NULL,
    sop_class_uid TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL,
    instance_number INTEGER,
    rows_ INTEGER,
    columns_ INTEGER,
    bits_allocated INTEGER,
    number_of_frames INTEGER,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    blob_key TEXT NOT NULL UNIQUE,
    frames TEXT NOT NULL,
    bulk TEXT NOT NULL,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    received_from TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    attrs TEXT NOT NULL,
    UNIQUE (sop_uid, sha256),
    UNIQUE (sop_uid, version)
);
CREATE UNIQUE INDEX instance_current ON instance(sop_uid) WHERE current = 1;
CREATE INDEX instance_series ON instance(series_id, current, instance_number);
CREATE INDEX instance_study ON instance(study_id);

-- Full per-instance metadata (DICOM JSON), apart so that instance scans stay small.
CREATE TABLE instance_metadata (
    instance_id INTEGER PRIMARY KEY REFERENCES instance(id),
    metadata TEXT NOT NULL
);
