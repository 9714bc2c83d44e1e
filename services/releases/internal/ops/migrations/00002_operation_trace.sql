-- The W3C trace context (https://www.w3.org/TR/trace-context/) of the
-- request that created each operation, so that the worker's execution,
-- later and perhaps on another replica, joins that request's trace. Empty
-- when the request carried no trace (the sweeper, the drift checker).

-- +goose Up
ALTER TABLE operations ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
ALTER TABLE operations ADD COLUMN tracestate  TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE operations DROP COLUMN tracestate;
ALTER TABLE operations DROP COLUMN traceparent;
