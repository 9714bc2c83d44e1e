-- Portable SQL: runs unchanged on SQLite and PostgreSQL. The ledger's own
-- migration set ("ledger"), beside the operation queue's.

-- +goose Up
-- Every revision Slipway made or saw of a release.
CREATE TABLE revisions (
    org                TEXT    NOT NULL,
    cluster            TEXT    NOT NULL,
    namespace          TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    -- A name installed again after an uninstall without history starts
    -- Helm's revisions at 1 again: a new generation of the release.
    generation         INTEGER NOT NULL DEFAULT 0,
    revision           INTEGER NOT NULL,
    status             INTEGER NOT NULL,   -- ReleaseStatus
    chart              TEXT    NOT NULL,
    chart_version      TEXT    NOT NULL,
    app_version        TEXT    NOT NULL,
    chart_source       TEXT    NOT NULL,
    chart_digest       TEXT    NOT NULL DEFAULT '',
    images             TEXT    NOT NULL DEFAULT '',  -- JSON [{reference, digest}]
    description        TEXT    NOT NULL,
    application        TEXT    NOT NULL DEFAULT '',
    application_target TEXT    NOT NULL DEFAULT '',
    operation          TEXT    NOT NULL DEFAULT '',
    creator            TEXT    NOT NULL,
    values_json        TEXT    NOT NULL,           -- user-supplied values
    computed_json      TEXT    NOT NULL,           -- values as installed (chart defaults merged)
    manifest           TEXT    NOT NULL,
    notes              TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    PRIMARY KEY (org, cluster, namespace, name, generation, revision)
);
CREATE INDEX revisions_application ON revisions (org, application, application_target, revision);

-- The latest revision of each release, for lists.
CREATE TABLE heads (
    org       TEXT    NOT NULL,
    cluster   TEXT    NOT NULL,
    namespace TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    revision   INTEGER NOT NULL,
    status     INTEGER NOT NULL,
    PRIMARY KEY (org, cluster, namespace, name)
);
CREATE INDEX heads_status ON heads (org, status);

-- +goose Down
DROP TABLE heads;
DROP TABLE revisions;
