-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- +goose Up
-- What the releases service did on its own, with no request behind it (an
-- abandoned release recovered): the gateway merges these into the org's
-- audit log, which otherwise records requests.
CREATE TABLE audit_events (
    id          TEXT   NOT NULL PRIMARY KEY, -- UUIDv7: time-ordered, the list order and page key
    org         TEXT   NOT NULL,
    occurred_at BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    target      TEXT   NOT NULL,
    result      INTEGER NOT NULL,
    detail      TEXT   NOT NULL
);
CREATE INDEX audit_events_org ON audit_events (org, id);

-- +goose Down
DROP TABLE audit_events;
