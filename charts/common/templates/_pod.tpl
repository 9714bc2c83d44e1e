{{/*
Pieces of a Slipway pod. Every helper takes the chart's root context.
*/}}

{{/* common.image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "common.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{/* The images run as distroless "nonroot" (65532) and need no privilege: this meets the "restricted" Pod Security Standard. */}}
{{- define "common.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "common.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Liveness on /healthz (the process is alive), readiness on /readyz (its dependencies answer), both on the admin port. */}}
{{- define "common.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: admin
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: admin
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end -}}

{{/*
common.identitySecretName: the Secret holding this chart's identity key:
identity.existingSecret, else global.identity.secretName (a template; the
slipway umbrella chart sets it), else a rendering error.
*/}}
{{- define "common.identitySecretName" -}}
{{- $name := .Values.identity.existingSecret -}}
{{- if not $name -}}
{{- $name = tpl (dig "global" "identity" "secretName" "" .Values.AsMap) . -}}
{{- end -}}
{{- required (printf "%s: set identity.existingSecret to a Secret holding %q, or install through the slipway umbrella chart" .Chart.Name .Values.identity.key) $name -}}
{{- end -}}

{{- define "common.identityDir" -}}/etc/slipway/identity{{- end -}}
