# slipway-gateway. No Vault secrets of its own: API tokens are stored hashed in the
# gateway's own database.
# Vault denies everything not listed, so it may only look up its own token.

path "auth/token/lookup-self" {
  capabilities = ["read"]
}
