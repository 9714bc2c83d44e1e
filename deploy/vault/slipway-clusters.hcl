# slipway-clusters: the Vault policy of the clusters service, the only
# Slipway process that talks to Vault. It owns every secret Slipway keeps
# (kubeconfigs, registry and chart repository credentials), stored per
# organization under orgs/<org>/... of the KV v2 mount "secret" (change the
# paths if you set clusters.vault.mount). Anything not listed is denied.

path "secret/data/orgs/+/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "secret/metadata/orgs/+/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Readiness checks, and telling a dead token from a policy denial.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# The service renews its token until the role's max TTL, then logs in again.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
