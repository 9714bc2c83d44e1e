-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- +goose Up
-- A source is one thing fetched: a repository URL with the login that
-- fetches it. Repositories of several organizations share an anonymous
-- source (one fetch per interval however many use it); a source fetched
-- with a credential belongs to that credential's organization alone.
CREATE TABLE sources (
    id               TEXT    NOT NULL PRIMARY KEY,
    source_key       TEXT    NOT NULL UNIQUE,       -- kind, url, oci charts, and org/credential when not anonymous
    kind             INTEGER NOT NULL,              -- 1 http index, 2 oci
    url              TEXT    NOT NULL,
    org              TEXT    NOT NULL DEFAULT '',   -- owner of credential_id; '' when anonymous
    credential_id    TEXT    NOT NULL DEFAULT '',
    oci_charts       TEXT    NOT NULL DEFAULT '',   -- newline-separated
    interval_us      BIGINT  NOT NULL,              -- the shortest interval of its repositories
    etag             TEXT    NOT NULL DEFAULT '',   -- validators of the last good index
    last_modified    TEXT    NOT NULL DEFAULT '',
    checksum         TEXT    NOT NULL DEFAULT '',
    state            INTEGER NOT NULL,              -- 1 pending, 2 syncing, 3 synced, 4 failed
    last_sync_at     BIGINT  NOT NULL DEFAULT 0,    -- unix microseconds, UTC; 0 never
    last_success_at  BIGINT  NOT NULL DEFAULT 0,
    last_error       TEXT    NOT NULL DEFAULT '',
    chart_count      INTEGER NOT NULL DEFAULT 0,
    skipped_versions INTEGER NOT NULL DEFAULT 0,
    next_sync_at     BIGINT  NOT NULL,
    lease_owner      TEXT    NOT NULL DEFAULT '',   -- the replica syncing it
    lease_until      BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX sources_next_sync ON sources (next_sync_at);

CREATE TABLE repositories (
    org           TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    url           TEXT   NOT NULL,
    credential_id TEXT   NOT NULL DEFAULT '',
    oci_charts    TEXT   NOT NULL DEFAULT '',
    interval_us   BIGINT NOT NULL,
    source_id     TEXT   NOT NULL REFERENCES sources (id),
    creator       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (org, name)
);
CREATE INDEX repositories_source ON repositories (source_id);
CREATE INDEX repositories_org_credential ON repositories (org, credential_id);

-- One row per chart of a source, describing its latest version.
CREATE TABLE charts (
    source_id      TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    latest_version TEXT    NOT NULL,
    app_version    TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    keywords       TEXT    NOT NULL,   -- newline-separated
    home_url       TEXT    NOT NULL,
    icon_url       TEXT    NOT NULL,
    deprecated     INTEGER NOT NULL,
    version_count  INTEGER NOT NULL,
    updated_at     BIGINT  NOT NULL,
    search_text    TEXT    NOT NULL,   -- lower-case name, description and keywords
    PRIMARY KEY (source_id, name)
);

-- Every version of every chart of a source; position 0 is the highest.
CREATE TABLE chart_versions (
    source_id TEXT    NOT NULL,
    chart     TEXT    NOT NULL,
    version   TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    digest    TEXT    NOT NULL,   -- "sha256:..." of the archive; '' until known
    metadata  TEXT    NOT NULL,   -- JSON of the index entry
    PRIMARY KEY (source_id, chart, version)
);
CREATE INDEX chart_versions_position ON chart_versions (source_id, chart, position);

-- Chart archives by content: each is downloaded once.
CREATE TABLE archives (
    scope      TEXT   NOT NULL,   -- '' when fetched anonymously (anyone could), else the org whose credential fetched it
    digest     TEXT   NOT NULL,
    size       BIGINT NOT NULL,
    data       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, digest)
);

CREATE TABLE applications (
    org        TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    repository TEXT   NOT NULL,
    chart      TEXT   NOT NULL,
    image      TEXT   NOT NULL,
    spec       TEXT   NOT NULL,   -- JSON: chart reference, image key, values, targets
    etag       TEXT   NOT NULL,
    creator    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org, name)
);
CREATE INDEX applications_repository ON applications (org, repository);

-- The clusters of each application's targets, for the cluster filter.
CREATE TABLE application_clusters (
    org         TEXT NOT NULL,
    application TEXT NOT NULL,
    cluster     TEXT NOT NULL,
    PRIMARY KEY (org, application, cluster)
);
CREATE INDEX application_clusters_cluster ON application_clusters (org, cluster);

-- +goose Down
DROP TABLE application_clusters;
DROP TABLE applications;
DROP TABLE archives;
DROP TABLE chart_versions;
DROP TABLE charts;
DROP TABLE repositories;
DROP TABLE sources;
