#!/bin/sh
# Sets up Vault for Slipway's clusters service (docs/install.md): a KV v2
# mount, the service's policy, and a Kubernetes auth role bound to the
# chart's ServiceAccount. Run with VAULT_ADDR and an admin VAULT_TOKEN.
#   NAMESPACE=slipway RELEASE=slipway sh deploy/vault/setup.sh
set -eu
NAMESPACE=${NAMESPACE:-slipway}
RELEASE=${RELEASE:-slipway}
MOUNT=${MOUNT:-secret}          # clusters.vault.mount
AUTH=${AUTH:-kubernetes}        # clusters.vault.kubernetes.mount
AUDIENCE=${AUDIENCE:-vault}     # clusters.vault.kubernetes.audience
here=$(dirname "$0")

vault secrets list -format=json | grep -q "\"$MOUNT/\"" || vault secrets enable -path="$MOUNT" kv-v2
vault policy write slipway-clusters "$here/slipway-clusters.hcl"
vault auth list -format=json | grep -q "\"$AUTH/\"" || vault auth enable -path="$AUTH" kubernetes
# Vault in the cluster: it reviews tokens with its own service account.
# Outside it, also set kubernetes_host, kubernetes_ca_cert, and either
# token_reviewer_jwt or (with clusters.rbac.tokenReviewer=true) nothing.
vault write "auth/$AUTH/config" kubernetes_host="${KUBERNETES_HOST:-https://kubernetes.default.svc}"
vault write "auth/$AUTH/role/slipway-clusters" \
  bound_service_account_names="$RELEASE-clusters" \
  bound_service_account_namespaces="$NAMESPACE" \
  audience="$AUDIENCE" \
  token_policies=slipway-clusters token_ttl=1h token_max_ttl=24h
