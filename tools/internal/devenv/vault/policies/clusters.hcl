# slipway-clusters. The clusters service owns every secret Slipway keeps
# (kubeconfigs, registry and chart repository credentials), stored per
# organization under orgs/<org>/... of the KV v2 mount secret/ (DESIGN.md).
# Anything not listed here is denied.

path "secret/data/orgs/+/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "secret/metadata/orgs/+/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}
