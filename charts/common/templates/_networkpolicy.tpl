{{/*
common.networkPolicy: the chart's ingress NetworkPolicy (when
networkPolicy.enabled). Only the intended callers reach the API port; every
other ingress to the pods is denied. Call it with a dict:
  ctx   the chart's root context (required)
  port  name of the API port in .Values.ports: "grpc" for a service, "http"
        for the gateway (required)
  open  true for the public edge (the gateway): with networkPolicy.from
        empty, any source may reach the API port (optional)
The chart's values:
  networkPolicy.callers      Slipway charts of this release (their
                             app.kubernetes.io/name) allowed on the API port
  networkPolicy.from         further sources on the API port (a list of
                             NetworkPolicyPeer)
  networkPolicy.metricsFrom  sources allowed on the admin port (/healthz,
                             /readyz, /metrics); empty: any source
Egress is not restricted.
*/}}
{{- define "common.networkPolicy" -}}
{{- $ := .ctx -}}
{{- $np := $.Values.networkPolicy -}}
{{- if $np.enabled -}}
{{- $port := get $.Values.ports .port | required (printf "common.networkPolicy: ports.%s is not set" .port) -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "common.fullname" $ }}
  labels:
    {{- include "common.labels" $ | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "common.selectorLabels" $ | nindent 6 }}
  policyTypes:
    - Ingress
  ingress:
    {{- if or $np.callers $np.from (not .open) }}
    {{- if or $np.callers $np.from }}
    # The API port: the Slipway charts that call this one, and networkPolicy.from.
    - ports:
        - port: {{ .port }}
          protocol: TCP
      from:
        {{- with $np.callers }}
        - podSelector:
            matchLabels:
              app.kubernetes.io/instance: {{ $.Release.Name }}
            matchExpressions:
              - key: app.kubernetes.io/name
                operator: In
                values:
                  {{- toYaml . | nindent 18 }}
        {{- end }}
        {{- with $np.from }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- end }}
    {{- else }}
    # The public edge: any source on the API port.
    - ports:
        - port: {{ .port }}
          protocol: TCP
    {{- end }}
    # The admin port: probes and metrics scrapes.
    - ports:
        - port: admin
          protocol: TCP
      {{- with $np.metricsFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
{{- end -}}
