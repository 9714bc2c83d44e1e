{{/*
Names and labels. Every Slipway object is named "<release>-<chart>", without
Helm's usual "release name already contains the chart name" shortcut, so the
gateway can compute the name of a sibling chart's Service (common.fullnameFor).
*/}}

{{- define "common.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* common.fullnameFor: the full name of chart .name in the release of .ctx. */}}
{{- define "common.fullnameFor" -}}
{{- printf "%s-%s" .ctx.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "common.fullname" -}}
{{- include "common.fullnameFor" (dict "ctx" . "name" .Chart.Name) -}}
{{- end -}}

{{- define "common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "common.selectorLabels" -}}
app.kubernetes.io/name: {{ include "common.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "common.labels" -}}
helm.sh/chart: {{ include "common.chart" . }}
{{ include "common.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .Chart.Name }}
app.kubernetes.io/part-of: slipway
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "common.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "common.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* common.envPrefix: the prefix of the binary's environment variables, SLIPWAY_<CHART>. */}}
{{- define "common.envPrefix" -}}
{{- printf "SLIPWAY_%s" (.Chart.Name | upper | replace "-" "_") -}}
{{- end -}}
