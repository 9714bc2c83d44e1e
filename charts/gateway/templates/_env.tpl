{{/*
gateway.env: the gateway's settings beyond the common ones (the database DSN
comes from common.deployment): the gRPC target of each service
(SLIPWAY_GATEWAY_<SVC>_ADDR), OIDC, bootstrap, CORS and rate limits.
*/}}
{{- define "gateway.env" -}}
{{- $ports := dict "clusters" 9101 "registry" 9102 "catalog" 9103 "releases" 9104 -}}
{{- range $svc, $port := $ports }}
- name: SLIPWAY_GATEWAY_{{ upper $svc }}_ADDR
  value: {{ get $.Values.upstreams $svc | default (printf "dns:///%s:%v" (include "common.fullnameFor" (dict "ctx" $ "name" $svc)) $port) | quote }}
{{- end }}
{{- with .Values.oidc.issuer }}
- name: SLIPWAY_GATEWAY_OIDC_ISSUER
  value: {{ . | quote }}
- name: SLIPWAY_GATEWAY_OIDC_AUDIENCE
  value: {{ $.Values.oidc.audience | quote }}
{{- end }}
- name: SLIPWAY_GATEWAY_BOOTSTRAP_ORG
  value: {{ .Values.bootstrap.org | quote }}
{{- with .Values.bootstrap.existingSecret }}
- name: SLIPWAY_GATEWAY_BOOTSTRAP_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.bootstrap.key }}
{{- end }}
{{- with .Values.cors.origins }}
- name: SLIPWAY_GATEWAY_CORS_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.rateLimits }}
- name: SLIPWAY_GATEWAY_RATE_PER_IP
  value: {{ .perIP | toString | quote }}
- name: SLIPWAY_GATEWAY_RATE_PER_IP_BURST
  value: {{ .perIPBurst | int64 | toString | quote }}
- name: SLIPWAY_GATEWAY_RATE_PER_CALLER
  value: {{ .perCaller | toString | quote }}
- name: SLIPWAY_GATEWAY_RATE_PER_CALLER_BURST
  value: {{ .perCallerBurst | int64 | toString | quote }}
- name: SLIPWAY_GATEWAY_TRUST_FORWARDED_FOR
  value: {{ .trustForwardedFor | toString | quote }}
{{- end }}
{{- end -}}
