{{/*
Names, labels, images, secrets and the pod pieces every component shares.
Only Helm 3 and Helm 4 built-ins and Sprig functions are used, so both render the chart alike.
*/}}

{{- define "notifier.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "notifier.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>": usage (dict "root" $ "component" "gateway") */}}
{{- define "notifier.componentName" -}}
{{- printf "%s-%s" (include "notifier.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "notifier.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of a component: usage (dict "root" $ "component" "gateway") */}}
{{- define "notifier.selectorLabels" -}}
app.kubernetes.io/name: {{ include "notifier.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* All labels of a component's objects: usage (dict "root" $ "component" "gateway") */}}
{{- define "notifier.labels" -}}
helm.sh/chart: {{ include "notifier.chart" .root }}
{{ include "notifier.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: notifier
{{- end }}

{{/* An image reference: usage (dict "root" $ "image" .Values.gateway.image) */}}
{{- define "notifier.image" -}}
{{- $registry := .root.Values.image.registry | trimSuffix "/" }}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- if $registry }}
{{- printf "%s/%s:%s" $registry .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* The migration Job's image: its own, else the gateway's (which carries /app/migrations). */}}
{{- define "notifier.migrationsImage" -}}
{{- $image := dict "repository" (.Values.migrations.image.repository | default .Values.gateway.image.repository) "tag" (.Values.migrations.image.tag | default .Values.gateway.image.tag) }}
{{- include "notifier.image" (dict "root" . "image" $image) }}
{{- end }}

{{/* The Secret made from devSecrets (development only). */}}
{{- define "notifier.devSecretName" -}}
{{- printf "%s-dev-credentials" (include "notifier.fullname" .) }}
{{- end }}

{{- define "notifier.postgresSecretName" -}}
{{- .Values.postgres.existingSecret | default (include "notifier.devSecretName" .) }}
{{- end }}

{{- define "notifier.twilioSecretName" -}}
{{- .Values.twilio.existingSecret | default (include "notifier.devSecretName" .) }}
{{- end }}

{{/* The gateway's kubernetes.io/tls Secret: its own name, else "<fullname>-gateway-tls". */}}
{{- define "notifier.gatewayTlsSecretName" -}}
{{- .Values.gateway.tls.secretName | default (printf "%s-gateway-tls" (include "notifier.fullname" .)) }}
{{- end }}

{{- define "notifier.usesDevSecret" -}}
{{- if or (not .Values.postgres.existingSecret) (not .Values.twilio.existingSecret) }}true{{ end }}
{{- end }}

{{/* Fails the render with a clear message on combinations the schema cannot express. */}}
{{- define "notifier.validate" -}}
{{- if and (not .Values.postgres.existingSecret) (not .Values.devSecrets.databaseUrl) }}
{{- fail "set postgres.existingSecret (a Secret with DATABASE_URL), or devSecrets.databaseUrl for development" }}
{{- end }}
{{- if and (not .Values.twilio.existingSecret) (or (not .Values.devSecrets.twilioAccountSid) (not .Values.devSecrets.twilioAuthToken)) }}
{{- fail "set twilio.existingSecret (a Secret with TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN), or devSecrets.twilioAccountSid and devSecrets.twilioAuthToken for development" }}
{{- end }}
{{- if and .Values.sender.enabled (not .Values.twilio.whatsappFrom) (not .Values.twilio.messagingServiceSid) }}
{{- fail "the sender needs twilio.whatsappFrom or twilio.messagingServiceSid" }}
{{- end }}
{{- if and .Values.gateway.tls.clientCa.enabled (not .Values.gateway.tls.enabled) }}
{{- fail "gateway.tls.clientCa.enabled needs gateway.tls.enabled: mTLS is TLS plus client certificates" }}
{{- end }}
{{- if and .Values.gateway.tls.enabled (eq (int .Values.gateway.healthPort) (int .Values.gateway.grpcPort)) }}
{{- fail "gateway.healthPort must differ from gateway.grpcPort: it serves plaintext health checks beside the TLS port" }}
{{- end }}
{{- if and .Values.messageTemplates.enabled (not .Values.operator.enabled) }}
{{- fail "messageTemplates.enabled needs operator.enabled: nothing would reconcile the MessageTemplates" }}
{{- end }}
{{- if and .Values.messageTemplates.enabled (not .Values.operator.watchAllNamespaces) .Values.operator.watchNamespaces (not (has .Release.Namespace .Values.operator.watchNamespaces)) }}
{{- fail (printf "messageTemplates are created in %s, which operator.watchNamespaces leaves out" .Release.Namespace) }}
{{- end }}
{{- end }}

{{/* Pod annotations that restart pods when the shared configuration changes. */}}
{{- define "notifier.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if include "notifier.usesDevSecret" . }}
checksum/dev-secret: {{ include (print .Template.BasePath "/dev-secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/* envFrom of the processes that talk to Kafka: the shared ConfigMap and Kafka's Secret. */}}
{{- define "notifier.kafkaEnvFrom" -}}
- configMapRef:
    name: {{ include "notifier.fullname" . }}-config
{{- if .Values.kafka.existingSecret }}
- secretRef:
    name: {{ .Values.kafka.existingSecret }}
{{- end }}
{{- end }}

{{- define "notifier.databaseUrlEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "notifier.postgresSecretName" . }}
      key: {{ if .Values.postgres.existingSecret }}{{ .Values.postgres.urlKey }}{{ else }}DATABASE_URL{{ end }}
{{- end }}

{{- define "notifier.twilioAuthTokenEnv" -}}
- name: TWILIO_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "notifier.twilioSecretName" . }}
      key: {{ if .Values.twilio.existingSecret }}{{ .Values.twilio.authTokenKey }}{{ else }}TWILIO_AUTH_TOKEN{{ end }}
{{- end }}

{{- define "notifier.twilioAccountSidEnv" -}}
- name: TWILIO_ACCOUNT_SID
  valueFrom:
    secretKeyRef:
      name: {{ include "notifier.twilioSecretName" . }}
      key: {{ if .Values.twilio.existingSecret }}{{ .Values.twilio.accountSidKey }}{{ else }}TWILIO_ACCOUNT_SID{{ end }}
{{- end }}

{{/* A component's env map (name: value) and extraEnv list: usage (dict "values" .Values.gateway) */}}
{{- define "notifier.extraEnv" -}}
{{- range $name, $value := .values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with .values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds: the process's own grace plus a margin. usage (dict "root" $ "grace" 20) */}}
{{- define "notifier.terminationGrace" -}}
{{- add (ceil .grace) .root.Values.pods.terminationGraceMarginSeconds }}
{{- end }}

{{/* The pod-level fields every component shares: usage (dict "root" $ "values" .Values.gateway) */}}
{{- define "notifier.podCommon" -}}
{{- with .root.Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.pods.securityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The writable /tmp every Python process gets on a read-only root filesystem. */}}
{{- define "notifier.tmpVolume" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.pods.tmpSizeLimit }}
{{- end }}

{{- define "notifier.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* A probe's timing fields: usage (dict "probe" .Values.gateway.probes.liveness) */}}
{{- define "notifier.probeTiming" -}}
{{- range $key := list "initialDelaySeconds" "periodSeconds" "timeoutSeconds" "failureThreshold" "successThreshold" }}
{{- if hasKey $.probe $key }}
{{ $key }}: {{ get $.probe $key }}
{{- end }}
{{- end }}
{{- end }}

{{/* The namespaces the operator watches (OPERATOR_NAMESPACE); empty when it watches all. */}}
{{- define "notifier.operatorNamespaces" -}}
{{- if not .Values.operator.watchAllNamespaces }}
{{- .Values.operator.watchNamespaces | default (list .Release.Namespace) | join "," }}
{{- end }}
{{- end }}

{{/* Whether the Prometheus Operator's API is there (or the caller said so with --api-versions). */}}
{{- define "notifier.hasPrometheusOperator" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{ end }}
{{- end }}

{{/* Label matchers of one component's series as scraped through its ServiceMonitor:
usage (dict "root" $ "component" "sender") */}}
{{- define "notifier.promSelector" -}}
namespace="{{ .root.Release.Namespace }}",job="{{ include "notifier.componentName" . }}"
{{- end }}
