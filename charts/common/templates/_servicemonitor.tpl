{{/*
common.serviceMonitor: a Prometheus Operator ServiceMonitor scraping the
admin port's /metrics (when serviceMonitor.enabled; the cluster needs the
monitoring.coreos.com CRDs). Takes the root context.
*/}}
{{- define "common.serviceMonitor" -}}
{{- $m := .Values.serviceMonitor -}}
{{- if $m.enabled -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "common.fullname" . }}
  labels:
    {{- include "common.labels" . | nindent 4 }}
    {{- with $m.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "common.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  endpoints:
    - port: admin
      path: /metrics
      interval: {{ $m.interval }}
      scrapeTimeout: {{ $m.scrapeTimeout }}
{{- end -}}
{{- end -}}
