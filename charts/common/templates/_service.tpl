{{/*
common.service renders the Service of a chart's .Values.ports. Call it with a dict:
  ctx       the chart's root context (required)
  headless  true for a gRPC service: clusterIP None, so DNS answers with every
            ready pod and the gateway's round-robin balancer spreads calls over
            the replicas (a ClusterIP would pin each HTTP/2 connection to one pod)
Without headless, the type is .Values.service.type.
*/}}
{{- define "common.service" -}}
{{- $ := .ctx -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "common.fullname" $ }}
  labels:
    {{- include "common.labels" $ | nindent 4 }}
spec:
  {{- if .headless }}
  clusterIP: None
  {{- else }}
  type: {{ $.Values.service.type }}
  {{- end }}
  selector:
    {{- include "common.selectorLabels" $ | nindent 4 }}
  ports:
    {{- range $name, $port := $.Values.ports }}
    - name: {{ $name }}
      port: {{ $port }}
      targetPort: {{ $name }}
      protocol: TCP
      {{- if eq $name "grpc" }}
      appProtocol: grpc
      {{- end }}
    {{- end }}
{{- end -}}
