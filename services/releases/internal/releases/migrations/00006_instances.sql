-- Portable SQL: runs unchanged on SQLite and PostgreSQL. Times are unix
-- microseconds, UTC; 0 means unset.

-- +goose Up
-- Short-lived application instances (LaunchInstance), each a release in a
-- namespace of its own, culled once expire_at passes.
CREATE TABLE instances (
    org              TEXT    NOT NULL,
    id               TEXT    NOT NULL,            -- "inst_" + ULID: time-ordered, the list order and page key
    application      TEXT    NOT NULL,
    target           TEXT    NOT NULL,
    cluster          TEXT    NOT NULL,            -- the cluster's id
    namespace        TEXT    NOT NULL,
    release_name     TEXT    NOT NULL,
    state            INTEGER NOT NULL,            -- 1 launching, 2 running, 3 failed, 4 deleting, 5 deleted
    location         TEXT    NOT NULL DEFAULT '',
    ttl              BIGINT  NOT NULL,            -- microseconds
    last_activity_at BIGINT  NOT NULL,
    expire_at        BIGINT  NOT NULL,
    launch_op        TEXT    NOT NULL DEFAULT '',
    launched_at      BIGINT  NOT NULL DEFAULT 0,  -- when the launch operation succeeded
    delete_op        TEXT    NOT NULL DEFAULT '', -- the latest delete operation
    creator          TEXT    NOT NULL,
    idempotency_key  TEXT    NOT NULL DEFAULT '',
    request_hash     TEXT    NOT NULL DEFAULT '', -- hex sha256 of the launch request, for the key
    created_at       BIGINT  NOT NULL,
    deleted_at       BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (org, id)
);
CREATE INDEX instances_application ON instances (org, application, id);
-- The culler's look-ups: what expired, and what waits for an operation or
-- a location.
CREATE INDEX instances_live_expiry ON instances (expire_at) WHERE state IN (1, 2, 3);
CREATE INDEX instances_unsettled ON instances (state, created_at) WHERE state IN (1, 4);
CREATE INDEX instances_deleted ON instances (deleted_at) WHERE state = 5;
CREATE UNIQUE INDEX instances_idempotency ON instances (org, idempotency_key) WHERE idempotency_key <> '';

-- One row per org that ever launched an instance: a launch locks it, so
-- that the count of the org's instances it checks cannot race another.
CREATE TABLE instance_orgs (
    org      TEXT   NOT NULL PRIMARY KEY,
    launches BIGINT NOT NULL
);

-- +goose Down
DROP TABLE instance_orgs;
DROP TABLE instances;
