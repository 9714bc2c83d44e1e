-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- +goose Up
-- The last background drift check of each release (--drift-interval), or
-- its last correction: what GetDeploymentDrift shows as last_check.
CREATE TABLE drift_checks (
    org           TEXT    NOT NULL,
    cluster       TEXT    NOT NULL,   -- the cluster's id
    namespace     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    revision      INTEGER NOT NULL,   -- whose manifest was compared
    drifted_count INTEGER NOT NULL,
    checked_at    BIGINT  NOT NULL,
    -- When this revision was first found drifted, 0 while in sync: a new
    -- value is a drift newly found (audited once, corrected once).
    drifted_since BIGINT  NOT NULL,
    error         TEXT    NOT NULL,   -- why the last check could not compare; '' when it could
    PRIMARY KEY (org, cluster, namespace, name)
);

-- +goose Down
DROP TABLE drift_checks;
