# slipway-catalog. No Vault secrets of its own: it asks the clusters service over gRPC
# for chart repository credentials.
# Vault denies everything not listed, so it may only look up its own token.

path "auth/token/lookup-self" {
  capabilities = ["read"]
}
