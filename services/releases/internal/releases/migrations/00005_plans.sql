-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- +goose Up
-- Plans of upgrades (PlanDeployment), kept for ApplyDeploymentPlan to
-- deploy exactly what was planned, until they expire (an hour).
CREATE TABLE plans (
    org           TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    cluster       TEXT    NOT NULL,   -- the cluster's id
    namespace     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    -- The release's latest revision the plan was made against.
    base_revision INTEGER NOT NULL,
    chart_json    TEXT    NOT NULL,   -- the chart, pinned: {repository, chart, version} | {oci} | {upload}
    chart_digest  TEXT    NOT NULL,
    chart_source  TEXT    NOT NULL,
    values_json   TEXT    NOT NULL,   -- user-supplied values, final
    options_json  TEXT    NOT NULL,
    manifest      TEXT    NOT NULL,   -- as rendered by the dry run
    creator       TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expire_at     BIGINT  NOT NULL,
    PRIMARY KEY (org, id)
);
CREATE INDEX plans_expiry ON plans (expire_at);

-- +goose Down
DROP TABLE plans;
