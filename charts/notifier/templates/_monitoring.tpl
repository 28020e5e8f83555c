{{/* A component's ServiceMonitor: usage (dict "root" $ "component" "gateway").
Prometheus gives the series job="<Service name>" and namespace="<release namespace>", which
the PrometheusRule's selectors (notifier.promSelector) rely on. */}}
{{- define "notifier.serviceMonitor" -}}
{{- $sm := .root.Values.monitoring.serviceMonitor }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "notifier.componentName" . }}
  labels:
    {{- include "notifier.labels" . | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "notifier.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames: [{{ .root.Release.Namespace }}]
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ $sm.interval }}
{{- end }}
