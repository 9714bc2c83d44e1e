{{/*
common.deployment renders a Slipway service's Deployment. Call it with a dict:
  ctx           the chart's root context (required)
  identity      "private" (the gateway: mounts the signing key) or "public"
                (a service: mounts the verification key); required
  database      true for a chart that owns a database (database.* values; see
                _database.tpl): the DSN env, the SQLite volume, and the
                replicaCount check (optional)
  serviceKey    true for an acting service (registry, catalog, releases): its
                own identity signing key, serviceKey.* (see _servicekeys.tpl),
                mounted alone (--service-key) (optional)
  trustServices true for a service that receives calls the acting services
                make as themselves: the public keys of trustedServiceKeys
                (--identity-service-keys) (optional)
  env           extra container env, a YAML list rendered by the chart (optional)
  volumes       extra pod volumes, a YAML list (optional)
  volumeMounts  extra container volume mounts, a YAML list (optional)

Every port in .Values.ports becomes a container port of that name and a
--listen-<name> flag on 0.0.0.0 (SLIPWAY_<CHART>_LISTEN_<NAME>); "admin"
serves the probes.
*/}}
{{- define "common.deployment" -}}
{{- $ := .ctx -}}
{{- $prefix := include "common.envPrefix" $ -}}
{{- $keyFlag := ternary "IDENTITY_PRIVATE_KEY" "IDENTITY_PUBLIC_KEYS" (eq (required "common.deployment: identity must be private or public" .identity) "private") -}}
{{- if .database }}{{ include "common.database.check" $ }}{{ end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "common.fullname" $ }}
  labels:
    {{- include "common.labels" $ | nindent 4 }}
spec:
  {{- if not $.Values.autoscaling.enabled }}
  replicas: {{ $.Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- include "common.selectorLabels" $ | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "common.labels" $ | nindent 8 }}
      {{- with $.Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "common.serviceAccountName" $ }}
      automountServiceAccountToken: false
      securityContext:
        {{- include "common.podSecurityContext" $ | nindent 8 }}
      containers:
        - name: {{ $.Chart.Name }}
          image: {{ include "common.image" $ | quote }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          securityContext:
            {{- include "common.containerSecurityContext" $ | nindent 12 }}
          env:
            {{- range $name, $port := $.Values.ports }}
            - name: {{ $prefix }}_LISTEN_{{ upper $name }}
              value: {{ printf "0.0.0.0:%v" $port | quote }}
            {{- end }}
            - name: {{ $prefix }}_LOG_LEVEL
              value: {{ $.Values.logLevel | quote }}
            - name: {{ $prefix }}_{{ $keyFlag }}
              value: {{ printf "%s/%s" (include "common.identityDir" $) $.Values.identity.key | quote }}
            {{- if .database }}
            {{- include "common.database.env" $ | nindent 12 }}
            {{- end }}
            {{- if .serviceKey }}
            {{- include "common.serviceKey.env" $ | nindent 12 }}
            {{- end }}
            {{- if .trustServices }}
            {{- with include "common.trustedServiceKeys.env" $ }}{{ . | nindent 12 }}{{ end }}
            {{- end }}
            {{- with .env }}
            {{- . | trim | nindent 12 }}
            {{- end }}
            {{- include "common.otlp.env" $ | nindent 12 }}
            {{- with $.Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            {{- range $name, $port := $.Values.ports }}
            - name: {{ $name }}
              containerPort: {{ $port }}
              protocol: TCP
            {{- end }}
          {{- include "common.probes" $ | nindent 10 }}
          {{- with $.Values.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            - name: identity
              mountPath: {{ include "common.identityDir" $ }}
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- if and .database (not $.Values.database.existingSecret) }}
            {{- include "common.database.volumeMounts" $ | nindent 12 }}
            {{- end }}
            {{- if .serviceKey }}
            {{- include "common.serviceKey.volumeMounts" $ | nindent 12 }}
            {{- end }}
            {{- if .trustServices }}
            {{- with include "common.trustedServiceKeys.volumeMounts" $ }}{{ . | nindent 12 }}{{ end }}
            {{- end }}
            {{- with .volumeMounts }}
            {{- . | trim | nindent 12 }}
            {{- end }}
      volumes:
        # Only this chart's key is projected: services never see the gateway's private key.
        - name: identity
          secret:
            secretName: {{ include "common.identitySecretName" $ }}
            defaultMode: 0440
            items:
              - key: {{ $.Values.identity.key }}
                path: {{ $.Values.identity.key }}
        - name: tmp
          emptyDir: {}
        {{- if and .database (not $.Values.database.existingSecret) }}
        {{- include "common.database.volumes" $ | nindent 8 }}
        {{- end }}
        {{- if .serviceKey }}
        {{- include "common.serviceKey.volumes" $ | nindent 8 }}
        {{- end }}
        {{- if .trustServices }}
        {{- with include "common.trustedServiceKeys.volumes" $ }}{{ . | nindent 8 }}{{ end }}
        {{- end }}
        {{- with .volumes }}
        {{- . | trim | nindent 8 }}
        {{- end }}
      {{- with $.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
