-- Yunying catalog, schema version 3 (SQLite): the registry of remote DICOM
-- application entities. It is the authority on AE titles: an AE belongs to
-- one institution, its objects are attributed to it, and its policy says
-- what it may do. institution.ae_titles stays, as the list given at set-up.

CREATE TABLE application_entity (
    id INTEGER PRIMARY KEY,
    ae_title TEXT NOT NULL UNIQUE,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    host TEXT,
    port INTEGER CHECK (port BETWEEN 1 AND 65535),
    may_store INTEGER NOT NULL DEFAULT 0 CHECK (may_store IN (0, 1)),
    may_query INTEGER NOT NULL DEFAULT 0 CHECK (may_query IN (0, 1)),
    may_retrieve INTEGER NOT NULL DEFAULT 0 CHECK (may_retrieve IN (0, 1)),
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX application_entity_institution ON application_entity(institution_id);
