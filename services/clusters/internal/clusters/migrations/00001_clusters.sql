-- Portable SQL: runs unchanged on SQLite and PostgreSQL. No secret is ever
-- stored here: secrets live in Vault at vault_path.

-- +goose Up
CREATE TABLE credentials (
    id               TEXT   NOT NULL PRIMARY KEY, -- "cred_" + ULID
    org              TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    type             TEXT   NOT NULL,              -- kubeconfig, registry, helm-repository
    endpoint         TEXT   NOT NULL,
    version          BIGINT NOT NULL,              -- the Vault KV v2 version of the secret
    vault_path       TEXT   NOT NULL,
    owner_cluster_id TEXT   NOT NULL DEFAULT '',
    creator          TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,              -- unix microseconds, UTC
    updated_at       BIGINT NOT NULL,
    CONSTRAINT credentials_org_name UNIQUE (org, name)
);
CREATE INDEX credentials_org_type_endpoint ON credentials (org, type, endpoint);

CREATE TABLE clusters (
    id              TEXT    NOT NULL PRIMARY KEY, -- "cl_" + ULID
    org             TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    labels          TEXT    NOT NULL,             -- JSON object
    server          TEXT    NOT NULL,
    credential_id   TEXT    NOT NULL,
    creator         TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    reachability    INTEGER NOT NULL DEFAULT 0,
    kube_version    TEXT    NOT NULL DEFAULT '',
    node_count      INTEGER NOT NULL DEFAULT 0,
    checked_at      BIGINT  NOT NULL DEFAULT 0,
    health_message  TEXT    NOT NULL DEFAULT '',
    CONSTRAINT clusters_org_name UNIQUE (org, name)
);
CREATE INDEX clusters_credential ON clusters (org, credential_id);
CREATE INDEX clusters_checked_at ON clusters (checked_at);

-- Every rotation and deletion of a credential, for the caches of the other
-- services (AccessService.WatchCredentialChanges); each replica polls it.
CREATE TABLE credential_changes (
    id            TEXT   NOT NULL PRIMARY KEY,    -- UUIDv7
    org           TEXT   NOT NULL,
    credential_id TEXT   NOT NULL,
    cluster_id    TEXT   NOT NULL DEFAULT '',
    version       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX credential_changes_created_at ON credential_changes (created_at);

-- Vault paths whose data must still be destroyed: written in the same
-- transaction that forgets a credential, removed once Vault confirms, so a
-- Vault outage delays a destroy but never loses it.
CREATE TABLE secret_destroys (
    vault_path TEXT   NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE secret_destroys;
DROP TABLE credential_changes;
DROP TABLE clusters;
DROP TABLE credentials;
