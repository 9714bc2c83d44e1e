{{/* gateway.env: the gRPC target of each service (SLIPWAY_GATEWAY_<SVC>_ADDR). */}}
{{- define "gateway.env" -}}
{{- $ports := dict "clusters" 9101 "registry" 9102 "catalog" 9103 "releases" 9104 -}}
{{- range $svc, $port := $ports }}
- name: SLIPWAY_GATEWAY_{{ upper $svc }}_ADDR
  value: {{ get $.Values.upstreams $svc | default (printf "dns:///%s:%v" (include "common.fullnameFor" (dict "ctx" $ "name" $svc)) $port) | quote }}
{{- end }}
{{- end -}}
