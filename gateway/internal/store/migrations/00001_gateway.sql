-- Portable SQL: runs unchanged on SQLite and PostgreSQL. Times are unix
-- microseconds, UTC, with 0 meaning unset.

-- +goose Up
CREATE TABLE orgs (
    id           TEXT   NOT NULL PRIMARY KEY, -- UUIDv7
    name         TEXT   NOT NULL,             -- immutable: the tenancy key every service stores
    display_name TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CONSTRAINT orgs_name UNIQUE (name)
);

-- subject and email are NULL, never '', when unknown: UNIQUE allows many NULLs.
CREATE TABLE users (
    id         TEXT   NOT NULL PRIMARY KEY, -- UUIDv7
    subject    TEXT,                        -- OIDC subject; NULL until the person signs in
    email      TEXT,                        -- NULL when unknown
    created_at BIGINT NOT NULL,
    CONSTRAINT users_subject UNIQUE (subject),
    CONSTRAINT users_email UNIQUE (email)
);

CREATE TABLE memberships (
    org_id     TEXT   NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id    TEXT   NOT NULL REFERENCES users (id),
    role       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_org ON memberships (user_id, org_id);

CREATE TABLE tokens (
    id           TEXT   NOT NULL PRIMARY KEY, -- UUIDv7: the list order and page key
    org_id       TEXT   NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    role         TEXT   NOT NULL,
    hash         TEXT   NOT NULL,             -- SHA-256 of the secret, lower-case hex
    creator      TEXT   NOT NULL,             -- user id
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT NOT NULL DEFAULT 0,
    revoked_at   BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT tokens_hash UNIQUE (hash),
    CONSTRAINT tokens_org_name UNIQUE (org_id, name)
);
CREATE INDEX tokens_org_id ON tokens (org_id, id);

CREATE TABLE audit_events (
    id          TEXT    NOT NULL PRIMARY KEY, -- UUIDv7: time-ordered, the list order and page key
    org_id      TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    occurred_at BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    token_id    TEXT    NOT NULL DEFAULT '',
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL DEFAULT '',
    result      INTEGER NOT NULL,
    request_id  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_org_id ON audit_events (org_id, id);
CREATE INDEX audit_events_org_actor_id ON audit_events (org_id, actor, id);
CREATE INDEX audit_events_org_action_id ON audit_events (org_id, action, id);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE tokens;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE orgs;
