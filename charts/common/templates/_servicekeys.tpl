{{/*
Service identity keys. Besides the identities the gateway signs for users,
the acting services (registry, catalog, releases) sign identities of their
own, each with a key pair of its own, for the calls they make on their own
behalf; the services they call trust those public keys.

Each acting service's pair lives in a Secret: "service.key" (PEM PKCS#8
Ed25519 private key) and "service.pub" (PEM PKIX public key). Its name, for a
service <svc>:
  1. the chart's own override (below), else
  2. global.serviceKeys.<svc>.secretName, a template (the slipway umbrella
     chart sets it and fills the Secret with a generated pair), else
  3. <release>-<svc>-service-key.

The chart values:
  serviceKey.existingSecret  (acting charts) Secret of this service's own
                             pair; empty: global.serviceKeys.<chart>.secretName
  serviceKey.key             key of the private key in it, the only key
                             mounted (--service-key)
  trustedServiceKeys.<svc>   (every chart that receives service calls) one
                             entry per acting service whose own identities
                             this one accepts (--identity-service-keys):
    .existingSecret          Secret holding <svc>'s public key; empty: this
                             chart's serviceKey.existingSecret for its own
                             entry, else global.serviceKeys.<svc>.secretName
    .key                     key of the public key in it, the only key mounted

common.deployment mounts them with "serviceKey" true and "trustServices" true.
*/}}

{{- define "common.serviceKeyDir" -}}/etc/slipway/service-key{{- end -}}
{{- define "common.trustedServiceKeysDir" -}}/etc/slipway/service-keys{{- end -}}

{{/* common.serviceKeys.defaultSecretName: the Secret of .service's key pair when no chart value names one. Takes a dict: ctx (root context), service. */}}
{{- define "common.serviceKeys.defaultSecretName" -}}
{{- $name := tpl (dig "global" "serviceKeys" .service "secretName" "" .ctx.Values.AsMap) .ctx -}}
{{- default (printf "%s-%s-service-key" .ctx.Release.Name .service) $name -}}
{{- end -}}

{{/* common.serviceKey.secretName: the Secret of this chart's own key pair. Takes the root context. */}}
{{- define "common.serviceKey.secretName" -}}
{{- default (include "common.serviceKeys.defaultSecretName" (dict "ctx" . "service" .Chart.Name)) .Values.serviceKey.existingSecret -}}
{{- end -}}

{{/* common.trustedServiceKey.secretName: the Secret holding the public key of .service, per this chart's trustedServiceKeys. Takes a dict: ctx, service. */}}
{{- define "common.trustedServiceKey.secretName" -}}
{{- $ := .ctx -}}
{{- $entry := get $.Values.trustedServiceKeys .service -}}
{{- $name := $entry.existingSecret -}}
{{- if and (not $name) (eq .service $.Chart.Name) (hasKey $.Values "serviceKey") -}}
{{- $name = $.Values.serviceKey.existingSecret -}}
{{- end -}}
{{- default (include "common.serviceKeys.defaultSecretName" (dict "ctx" $ "service" .service)) $name -}}
{{- end -}}

{{/* common.serviceKey.env, .volumes, .volumeMounts: this service's own private key (--service-key). Take the root context. */}}
{{- define "common.serviceKey.env" -}}
- name: {{ include "common.envPrefix" . }}_SERVICE_KEY
  value: {{ printf "%s/%s" (include "common.serviceKeyDir" .) .Values.serviceKey.key | quote }}
{{- end -}}

{{- define "common.serviceKey.volumes" -}}
# Only this service's private key: no other pod mounts it.
- name: service-key
  secret:
    secretName: {{ include "common.serviceKey.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .Values.serviceKey.key }}
        path: {{ .Values.serviceKey.key }}
{{- end -}}

{{- define "common.serviceKey.volumeMounts" -}}
- name: service-key
  mountPath: {{ include "common.serviceKeyDir" . }}
  readOnly: true
{{- end -}}

{{/*
common.trustedServiceKeys.env, .volumes, .volumeMounts: the public keys of
trustedServiceKeys (--identity-service-keys service=file,...), each at
<dir>/<service>.pub in one projected volume. Nothing when the map is empty.
Take the root context.
*/}}
{{- define "common.trustedServiceKeys.env" -}}
{{- $dir := include "common.trustedServiceKeysDir" . -}}
{{- $pairs := list -}}
{{- range $svc, $entry := .Values.trustedServiceKeys -}}
{{- if $entry -}}
{{- $pairs = append $pairs (printf "%s=%s/%s.pub" $svc $dir $svc) -}}
{{- end -}}
{{- end -}}
{{- with $pairs -}}
- name: {{ include "common.envPrefix" $ }}_IDENTITY_SERVICE_KEYS
  value: {{ join "," . | quote }}
{{- end -}}
{{- end -}}

{{- define "common.trustedServiceKeys.volumes" -}}
{{- $ := . -}}
{{- $entries := dict -}}
{{- range $svc, $entry := .Values.trustedServiceKeys -}}
{{- if $entry }}{{ $_ := set $entries $svc $entry }}{{ end -}}
{{- end -}}
{{- if $entries -}}
# The acting services' public keys only, never their private keys.
- name: service-keys
  projected:
    defaultMode: 0440
    sources:
      {{- range $svc, $entry := $entries }}
      - secret:
          name: {{ include "common.trustedServiceKey.secretName" (dict "ctx" $ "service" $svc) }}
          items:
            - key: {{ $entry.key }}
              path: {{ $svc }}.pub
      {{- end }}
{{- end -}}
{{- end -}}

{{- define "common.trustedServiceKeys.volumeMounts" -}}
{{- $any := false -}}
{{- range $svc, $entry := .Values.trustedServiceKeys -}}
{{- if $entry }}{{ $any = true }}{{ end -}}
{{- end -}}
{{- if $any -}}
- name: service-keys
  mountPath: {{ include "common.trustedServiceKeysDir" . }}
  readOnly: true
{{- end -}}
{{- end -}}
