-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- +goose Up
-- The images each release's deployed head runs: where an image runs, and
-- what keeps the registry from deleting it.
CREATE TABLE head_images (
    org       TEXT    NOT NULL,
    digest    TEXT    NOT NULL,
    cluster   TEXT    NOT NULL,
    namespace TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    revision  INTEGER NOT NULL,
    PRIMARY KEY (org, digest, cluster, namespace, name)
);

-- +goose Down
DROP TABLE head_images;
