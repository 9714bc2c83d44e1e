-- Portable SQL: runs unchanged on SQLite and PostgreSQL. Times are unix
-- microseconds, UTC; 0 means unset. Booleans are INTEGER 0 or 1.

-- +goose Up
CREATE TABLE operations (
    id                 TEXT    NOT NULL PRIMARY KEY, -- "op_" + ULID: time-ordered, the list order and page key
    org                TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    target             TEXT    NOT NULL,             -- the release's queue: escaped cluster/namespace/release
    cluster            TEXT    NOT NULL,
    namespace          TEXT    NOT NULL,
    release_name       TEXT    NOT NULL,
    application        TEXT    NOT NULL DEFAULT '',
    application_target TEXT    NOT NULL DEFAULT '',
    instance           TEXT    NOT NULL DEFAULT '',
    seq                BIGINT  NOT NULL,             -- place in the target's queue, from operation_targets.enqueued
    dry_run            INTEGER NOT NULL DEFAULT 0,
    payload            BYTEA   NOT NULL,
    idempotency_key    TEXT    NOT NULL DEFAULT '',
    creator            TEXT    NOT NULL,
    state              INTEGER NOT NULL,             -- 1 queued, 2 running, 3 succeeded, 4 failed, 5 cancelled
    phase              TEXT    NOT NULL DEFAULT '',  -- phase of the latest event
    attempt            INTEGER NOT NULL DEFAULT 0,   -- claims so far
    cancel_requested   INTEGER NOT NULL DEFAULT 0,
    fence              BIGINT  NOT NULL DEFAULT 0,   -- fencing token of the latest claim
    lease_owner        TEXT    NOT NULL DEFAULT '',
    lease_until        BIGINT  NOT NULL DEFAULT 0,
    event_count        BIGINT  NOT NULL DEFAULT 0,   -- events ever appended; the latest 200 are kept
    result             BYTEA,
    error_code         TEXT    NOT NULL DEFAULT '',
    error_message      TEXT    NOT NULL DEFAULT '',
    version            BIGINT  NOT NULL,             -- one more at every change watchers can see
    created_at         BIGINT  NOT NULL,
    started_at         BIGINT  NOT NULL DEFAULT 0,
    ended_at           BIGINT  NOT NULL DEFAULT 0,
    updated_at         BIGINT  NOT NULL,
    CONSTRAINT operations_target_seq UNIQUE (org, target, seq)
);
-- The head of each target's queue: its first queued or running operation.
CREATE INDEX operations_active_target ON operations (org, target, seq) WHERE state IN (1, 2);
CREATE INDEX operations_org_id ON operations (org, id);
CREATE INDEX operations_org_cluster_id ON operations (org, cluster, id);
CREATE INDEX operations_org_state_id ON operations (org, state, id);

-- One row per release that ever had an operation. Enqueue, Claim, Finish
-- and RequestCancel lock it, which orders the queue and serialises claims
-- of one release.
CREATE TABLE operation_targets (
    org         TEXT   NOT NULL,
    target      TEXT   NOT NULL,
    enqueued    BIGINT NOT NULL,           -- last seq handed out
    fence       BIGINT NOT NULL DEFAULT 0, -- last fencing token handed out
    -- When the head of the queue may next be claimable: when it became
    -- ready, or when its lease ends; 9223372036854775807 when the queue is
    -- empty. A hint Claim checks against the head and corrects, so that a
    -- claim looks at a few releases rather than at every queued operation.
    claim_after BIGINT NOT NULL,
    PRIMARY KEY (org, target)
);
CREATE INDEX operation_targets_claim_after ON operation_targets (claim_after);

-- The latest events of each operation; n counts from 1.
CREATE TABLE operation_events (
    org     TEXT   NOT NULL,
    op_id   TEXT   NOT NULL,
    n       BIGINT NOT NULL,
    at      BIGINT NOT NULL,
    phase   TEXT   NOT NULL,
    message TEXT   NOT NULL,
    PRIMARY KEY (org, op_id, n)
);

-- What an operation looked like at each version that changed its state,
-- attempt or cancellation (not at each event), so that a watcher that
-- polls never misses a state.
CREATE TABLE operation_transitions (
    org              TEXT    NOT NULL,
    op_id            TEXT    NOT NULL,
    version          BIGINT  NOT NULL,
    state            INTEGER NOT NULL,
    phase            TEXT    NOT NULL,
    attempt          INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL,
    event_count      BIGINT  NOT NULL,
    started_at       BIGINT  NOT NULL,
    PRIMARY KEY (org, op_id, version)
);

-- Idempotency keys, each valid for 24 hours; expired ones are deleted by
-- DeleteExpiredKeys, the operations stay.
CREATE TABLE operation_idempotency_keys (
    org          TEXT   NOT NULL,
    idem_key     TEXT   NOT NULL,
    op_id        TEXT   NOT NULL,
    request_hash TEXT   NOT NULL, -- hex sha256 of the request, see requestHash
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (org, idem_key)
);
CREATE INDEX operation_idempotency_keys_created ON operation_idempotency_keys (created_at);

-- +goose Down
DROP TABLE operation_idempotency_keys;
DROP TABLE operation_transitions;
DROP TABLE operation_events;
DROP TABLE operation_targets;
DROP TABLE operations;
