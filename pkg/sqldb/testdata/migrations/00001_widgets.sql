-- +goose Up
CREATE TABLE widgets (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE widgets;
