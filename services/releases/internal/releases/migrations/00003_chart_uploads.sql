-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- +goose Up
-- Chart archives uploaded with an install or upgrade, kept by digest
-- until the operations that deploy them have run (any replica may run
-- them): Helm then holds the chart in the release itself.
CREATE TABLE chart_uploads (
    org         TEXT   NOT NULL,
    digest      TEXT   NOT NULL,
    data        BYTEA  NOT NULL,
    upload_time BIGINT NOT NULL,
    PRIMARY KEY (org, digest)
);

-- +goose Down
DROP TABLE chart_uploads;
