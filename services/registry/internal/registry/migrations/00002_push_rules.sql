-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- +goose Up
-- How each org's push webhooks name images; no row: the default rule.
CREATE TABLE push_rules (
    org               TEXT    NOT NULL PRIMARY KEY,
    repository_prefix TEXT    NOT NULL,
    naming            INTEGER NOT NULL,  -- 1 last segment, 2 path
    updated_at        BIGINT  NOT NULL   -- unix microseconds, UTC
);

-- +goose Down
DROP TABLE push_rules;
