{{/*
The registry service's settings beyond the common ones (the database DSN and
the identity and service keys come from common.deployment): the clusters
target, the outbound policy and unresolved images. Takes the chart's root
context.
*/}}

{{/* registry.env: the SLIPWAY_REGISTRY_* variables. */}}
{{- define "registry.env" -}}
- name: SLIPWAY_REGISTRY_CLUSTERS_ADDR
  value: {{ required "registry: set upstreams.clusters to the clusters service's gRPC target (e.g. dns:///<release>-clusters:9101): images resolve with the organizations' registry logins it holds, and the registry does not start without it" (tpl .Values.upstreams.clusters .) | quote }}
{{- with tpl (.Values.upstreams.releases | default "") . }}
- name: SLIPWAY_REGISTRY_RELEASES_ADDR
  value: {{ . | quote }}
{{- end }}
{{- with .Values.outbound.denyCIDRs }}
- name: SLIPWAY_REGISTRY_OUTBOUND_DENY_CIDRS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.outbound.allowCIDRs }}
- name: SLIPWAY_REGISTRY_OUTBOUND_ALLOW_CIDRS
  value: {{ join "," . | quote }}
{{- end }}
- name: SLIPWAY_REGISTRY_ACCEPT_UNRESOLVED
  value: {{ .Values.acceptUnresolved | toString | quote }}
{{- end -}}
