{{/*
The database of a chart that owns one (common.deployment with "database"
true). The chart's values:
  database.existingSecret  Secret holding the DSN (--database), normally
                           postgres://...; empty: embedded SQLite
  database.key             key of the DSN in that Secret
Without existingSecret the DSN is sqlite:/var/lib/slipway/<chart>.db on an
emptyDir volume (the root filesystem is read-only): the data lives as long as
the pod, so more than one replica is refused. Every helper takes the chart's
root context.
*/}}

{{- define "common.dataDir" -}}/var/lib/slipway{{- end -}}

{{/* common.database.check fails the render when more than one pod (replicaCount, or autoscaling.maxReplicas) would run on the embedded SQLite database. */}}
{{- define "common.database.check" -}}
{{- if not .Values.database.existingSecret -}}
{{- if and (not .Values.autoscaling.enabled) (gt (int .Values.replicaCount) 1) -}}
{{- fail (printf "%s: replicaCount > 1 needs database.existingSecret (PostgreSQL); the embedded SQLite database is per pod" .Chart.Name) -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) 1) -}}
{{- fail (printf "%s: autoscaling.maxReplicas > 1 needs database.existingSecret (PostgreSQL); the embedded SQLite database is per pod" .Chart.Name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* common.database.env: <PREFIX>_DATABASE, from database.existingSecret or the embedded SQLite file. */}}
{{- define "common.database.env" -}}
- name: {{ include "common.envPrefix" . }}_DATABASE
{{- if .Values.database.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.key }}
{{- else }}
  value: sqlite:{{ include "common.dataDir" . }}/{{ .Chart.Name }}.db
{{- end }}
{{- end -}}

{{/* common.database.volumes and common.database.volumeMounts: the writable directory of the embedded SQLite database (nothing with existingSecret). */}}
{{- define "common.database.volumes" -}}
{{- if not .Values.database.existingSecret -}}
- name: data
  emptyDir: {}
{{- end -}}
{{- end -}}

{{- define "common.database.volumeMounts" -}}
{{- if not .Values.database.existingSecret -}}
- name: data
  mountPath: {{ include "common.dataDir" . }}
{{- end -}}
{{- end -}}
