-- +goose Up
CREATE INDEX widgets_created_at ON widgets (created_at);

-- +goose Down
DROP INDEX widgets_created_at;
