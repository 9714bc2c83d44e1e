{{/* registry.env: the database DSN, from database.existingSecret or the embedded SQLite file. */}}
{{- define "registry.env" -}}
- name: SLIPWAY_REGISTRY_DATABASE
{{- if .Values.database.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.key }}
{{- else }}
  value: sqlite:/var/lib/slipway/registry.db
{{- end }}
{{- end -}}

{{/* registry.volumes and registry.volumeMounts: the writable directory of the embedded SQLite database. */}}
{{- define "registry.volumes" -}}
{{- if not .Values.database.existingSecret -}}
- name: data
  emptyDir: {}
{{- end -}}
{{- end -}}

{{- define "registry.volumeMounts" -}}
{{- if not .Values.database.existingSecret -}}
- name: data
  mountPath: /var/lib/slipway
{{- end -}}
{{- end -}}
