{{/*
The releases service's settings beyond the common ones (the database DSN and
the identity and service keys come from common.deployment): the clusters,
catalog and registry targets, the outbound policy and the operations' workers
and lease.
Takes the chart's root context.
*/}}

{{/* releases.env: the SLIPWAY_RELEASES_* variables. */}}
{{- define "releases.env" -}}
- name: SLIPWAY_RELEASES_CLUSTERS_ADDR
  value: {{ required "releases: set upstreams.clusters to the clusters service's gRPC target (e.g. dns:///<release>-clusters:9101): operations reach the clusters with the credentials it holds, and the releases service does not start without it" (tpl (.Values.upstreams.clusters | default "") .) | quote }}
- name: SLIPWAY_RELEASES_CATALOG_ADDR
  value: {{ required "releases: set upstreams.catalog to the catalog service's gRPC target (e.g. dns:///<release>-catalog:9103): operations deploy the charts and applications it serves, and the releases service does not start without it" (tpl (.Values.upstreams.catalog | default "") .) | quote }}
- name: SLIPWAY_RELEASES_REGISTRY_ADDR
  value: {{ required "releases: set upstreams.registry to the registry service's gRPC target (e.g. dns:///<release>-registry:9102): applications deploy the images it resolves, and the releases service does not start without it" (tpl (.Values.upstreams.registry | default "") .) | quote }}
{{- with .Values.outbound.denyCIDRs }}
- name: SLIPWAY_RELEASES_OUTBOUND_DENY_CIDRS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.outbound.allowCIDRs }}
- name: SLIPWAY_RELEASES_OUTBOUND_ALLOW_CIDRS
  value: {{ join "," . | quote }}
{{- end }}
- name: SLIPWAY_RELEASES_WORKERS
  value: {{ .Values.operations.workers | int | toString | quote }}
- name: SLIPWAY_RELEASES_OPERATION_LEASE
  value: {{ .Values.operations.lease | quote }}
- name: SLIPWAY_RELEASES_SWEEP_INTERVAL
  value: {{ .Values.operations.sweepInterval | quote }}
- name: SLIPWAY_RELEASES_STUCK_AFTER
  value: {{ .Values.operations.stuckAfter | quote }}
- name: SLIPWAY_RELEASES_DRIFT_INTERVAL
  value: {{ .Values.drift.interval | quote }}
- name: SLIPWAY_RELEASES_DRIFT_CORRECT
  value: {{ .Values.drift.correct | quote }}
- name: SLIPWAY_RELEASES_INSTANCE_MIN_TTL
  value: {{ .Values.instances.minTTL | quote }}
- name: SLIPWAY_RELEASES_INSTANCES_PER_ORG
  value: {{ .Values.instances.perOrg | int | toString | quote }}
- name: SLIPWAY_RELEASES_INSTANCE_CULL_INTERVAL
  value: {{ .Values.instances.cullInterval | quote }}
{{- end -}}
