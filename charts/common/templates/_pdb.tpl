{{/*
common.podDisruptionBudget: the chart's PodDisruptionBudget (when
podDisruptionBudget.enabled). maxUnavailable rather than minAvailable, so a
single replica never blocks a node drain. Takes the root context.
*/}}
{{- define "common.podDisruptionBudget" -}}
{{- if .Values.podDisruptionBudget.enabled -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "common.fullname" . }}
  labels:
    {{- include "common.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "common.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}
