-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- +goose Up
CREATE TABLE images (
    id         TEXT   NOT NULL PRIMARY KEY, -- UUIDv7: time-ordered, the list order and page key
    org        TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    version    TEXT   NOT NULL,
    reference  TEXT   NOT NULL,
    digest     TEXT   NOT NULL DEFAULT '',
    creator    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,              -- unix microseconds, UTC
    CONSTRAINT images_org_name_version UNIQUE (org, name, version)
);
CREATE INDEX images_org_id ON images (org, id);
CREATE INDEX images_org_name_id ON images (org, name, id);

-- +goose Down
DROP TABLE images;
