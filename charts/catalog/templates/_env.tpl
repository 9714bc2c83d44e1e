{{/*
The catalog service's settings beyond the common ones (the database DSN and
the identity and service keys come from common.deployment): the clusters,
registry and releases targets, the outbound policy, what repositories may
serve and the background sync. Takes the chart's root context.
*/}}

{{/* catalog.env: the SLIPWAY_CATALOG_* variables. */}}
{{- define "catalog.env" -}}
- name: SLIPWAY_CATALOG_CLUSTERS_ADDR
  value: {{ required "catalog: set upstreams.clusters to the clusters service's gRPC target (e.g. dns:///<release>-clusters:9101): repositories fetch with the organizations' logins it holds and application targets name its clusters, and the catalog does not start without it" (tpl (.Values.upstreams.clusters | default "") .) | quote }}
- name: SLIPWAY_CATALOG_REGISTRY_ADDR
  value: {{ required "catalog: set upstreams.registry to the registry service's gRPC target (e.g. dns:///<release>-registry:9102): applications name its images, and the catalog does not start without it" (tpl (.Values.upstreams.registry | default "") .) | quote }}
{{- with tpl (.Values.upstreams.releases | default "") . }}
- name: SLIPWAY_CATALOG_RELEASES_ADDR
  value: {{ . | quote }}
{{- end }}
{{- with .Values.outbound.denyCIDRs }}
- name: SLIPWAY_CATALOG_OUTBOUND_DENY_CIDRS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.outbound.allowCIDRs }}
- name: SLIPWAY_CATALOG_OUTBOUND_ALLOW_CIDRS
  value: {{ join "," . | quote }}
{{- end }}
- name: SLIPWAY_CATALOG_ALLOW_HTTP_REPOSITORIES
  value: {{ .Values.repositories.allowHttp | toString | quote }}
- name: SLIPWAY_CATALOG_MAX_INDEX_BYTES
  value: {{ .Values.repositories.maxIndexBytes | int64 | toString | quote }}
- name: SLIPWAY_CATALOG_SYNC_WORKERS
  value: {{ .Values.sync.workers | int | toString | quote }}
- name: SLIPWAY_CATALOG_SYNC_POLL
  value: {{ .Values.sync.poll | quote }}
{{- end -}}
