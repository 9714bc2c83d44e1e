-- A deleted organization's name is never given out again: every service
-- keys its rows by org name, so a new org of the same name would otherwise
-- inherit whatever the old one left behind there (images, repositories).

-- +goose Up
CREATE TABLE retired_org_names (
    name       TEXT   NOT NULL PRIMARY KEY,
    retired_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE retired_org_names;
