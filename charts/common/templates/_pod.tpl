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

{{/*
common.otlp.env: the OpenTelemetry SDK's variables when otlp.endpoint (else
global.otlp.endpoint, which the umbrella chart sets for every chart) is set:
traces go there over otlp.protocol, tagged with the pod's namespace and name
(OTEL_RESOURCE_ATTRIBUTES from the downward API). Nothing otherwise.
*/}}
{{- define "common.otlp.env" -}}
{{- with .Values.otlp.endpoint | default (dig "global" "otlp" "endpoint" "" .Values.AsMap) -}}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $.Values.otlp.protocol | quote }}
- name: SLIPWAY_POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: SLIPWAY_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.namespace.name=$(SLIPWAY_POD_NAMESPACE),k8s.pod.name=$(SLIPWAY_POD_NAME),service.namespace=slipway"
{{- end -}}
{{- end -}}
