{{/* NetworkPolicy rules shared by the components' policies. */}}

{{/* Ingress to a metrics port from Prometheus: usage (dict "root" $ "port" 9101) */}}
{{- define "notifier.metricsIngress" -}}
- ports:
    - {port: {{ .port }}, protocol: TCP}
  {{- with .root.Values.networkPolicy.prometheus }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "notifier.egressDns" -}}
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
  {{- with .Values.networkPolicy.dns }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Egress to a dependency: usage (.Values.networkPolicy.postgres), a dict with "to" and "ports". */}}
{{- define "notifier.egressTo" -}}
- ports:
    {{- range .ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
