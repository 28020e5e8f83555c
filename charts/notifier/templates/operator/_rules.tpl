{{/* What the operator does with MessageTemplates: watch them, patch finalizers, annotations and
status, and post events about them. */}}
{{- define "notifier.operatorTemplateRules" -}}
- apiGroups: [whatsapp.notifier.dev]
  resources: [messagetemplates]
  verbs: [get, list, watch, patch]
- apiGroups: [whatsapp.notifier.dev]
  resources: [messagetemplates/status]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
{{- end }}
