{{/*
The clusters service's settings beyond the common ones (the database DSN
comes from common.deployment): Vault (address, login, CA), the outbound
policy, the releases and catalog targets, and the intervals. Every helper
takes the chart's root context.
*/}}

{{- define "clusters.vaultTokenDir" -}}/var/run/secrets/slipway/vault{{- end -}}
{{- define "clusters.vaultCADir" -}}/etc/slipway/vault-ca{{- end -}}

{{/* clusters.env: the SLIPWAY_CLUSTERS_* variables; secrets only through secretKeyRef. */}}
{{- define "clusters.env" -}}
{{- $v := .Values.vault -}}
- name: SLIPWAY_CLUSTERS_VAULT_ADDR
  value: {{ required "clusters: set vault.addr to Vault's URL (e.g. https://vault.vault.svc:8200): the clusters service keeps every secret in Vault and does not start without it" $v.addr | quote }}
- name: SLIPWAY_CLUSTERS_VAULT_AUTH
  value: {{ $v.auth | quote }}
- name: SLIPWAY_CLUSTERS_VAULT_MOUNT
  value: {{ $v.mount | quote }}
- name: SLIPWAY_CLUSTERS_VAULT_TIMEOUT
  value: {{ $v.timeout | quote }}
{{- if eq $v.auth "kubernetes" }}
- name: SLIPWAY_CLUSTERS_VAULT_KUBERNETES_ROLE
  value: {{ $v.kubernetes.role | quote }}
- name: SLIPWAY_CLUSTERS_VAULT_KUBERNETES_MOUNT
  value: {{ $v.kubernetes.mount | quote }}
- name: SLIPWAY_CLUSTERS_VAULT_KUBERNETES_TOKEN_PATH
  value: {{ printf "%s/token" (include "clusters.vaultTokenDir" .) | quote }}
{{- else if eq $v.auth "approle" }}
{{- $secret := required "clusters: vault.auth=approle needs vault.approle.existingSecret, a Secret holding the AppRole role id and secret id (keys vault.approle.roleIdKey and vault.approle.secretIdKey)" $v.approle.existingSecret }}
- name: SLIPWAY_CLUSTERS_VAULT_ROLE_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.approle.roleIdKey }}
- name: SLIPWAY_CLUSTERS_VAULT_SECRET_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.approle.secretIdKey }}
{{- else if eq $v.auth "token" }}
- name: SLIPWAY_CLUSTERS_VAULT_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ required "clusters: vault.auth=token needs vault.token.existingSecret, a Secret holding the Vault token (key vault.token.key)" $v.token.existingSecret }}
      key: {{ $v.token.key }}
{{- else }}
{{- fail (printf "clusters: vault.auth %q is not approle, kubernetes or token" $v.auth) }}
{{- end }}
{{- if $v.caCert.existingSecret }}
- name: SLIPWAY_CLUSTERS_VAULT_CA_CERT
  value: {{ printf "%s/ca.crt" (include "clusters.vaultCADir" .) | quote }}
{{- end }}
{{- with .Values.outbound.denyCIDRs }}
- name: SLIPWAY_CLUSTERS_OUTBOUND_DENY_CIDRS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.outbound.allowCIDRs }}
- name: SLIPWAY_CLUSTERS_OUTBOUND_ALLOW_CIDRS
  value: {{ join "," . | quote }}
{{- end }}
{{- with tpl .Values.upstreams.releases . }}
- name: SLIPWAY_CLUSTERS_RELEASES_ADDR
  value: {{ . | quote }}
{{- end }}
{{- with tpl .Values.upstreams.catalog . }}
- name: SLIPWAY_CLUSTERS_CATALOG_ADDR
  value: {{ . | quote }}
{{- end }}
- name: SLIPWAY_CLUSTERS_HEALTH_INTERVAL
  value: {{ .Values.healthInterval | quote }}
- name: SLIPWAY_CLUSTERS_CHANGES_POLL_INTERVAL
  value: {{ .Values.changesPollInterval | quote }}
{{- end -}}

{{/*
clusters.volumes and clusters.volumeMounts: with vault.auth=kubernetes, a
projected service account token for Vault only (its own audience, an hour's
life, renewed by the kubelet) on a path of its own, so the pod still mounts
no Kubernetes API token; with vault.caCert.existingSecret, that CA
certificate alone.
*/}}
{{- define "clusters.volumes" -}}
{{- if eq .Values.vault.auth "kubernetes" }}
- name: vault-token
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          audience: {{ .Values.vault.kubernetes.audience | quote }}
          expirationSeconds: 3600
          path: token
{{- end }}
{{- with .Values.vault.caCert.existingSecret }}
- name: vault-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: {{ $.Values.vault.caCert.key }}
        path: ca.crt
{{- end }}
{{- end -}}

{{- define "clusters.volumeMounts" -}}
{{- if eq .Values.vault.auth "kubernetes" }}
- name: vault-token
  mountPath: {{ include "clusters.vaultTokenDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.vault.caCert.existingSecret }}
- name: vault-ca
  mountPath: {{ include "clusters.vaultCADir" . }}
  readOnly: true
{{- end }}
{{- end -}}
