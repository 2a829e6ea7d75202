{{/* The chart's name, truncated to the 63 characters a label or DNS name allows. */}}
{{- define "tandem.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of every object, truncated to 63 characters. */}}
{{- define "tandem.fullname" -}}
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

{{/* A name derived from the full name, with a suffix, still within 63 characters. */}}
{{- define "tandem.suffixed" -}}
{{- $suffix := index . 1 -}}
{{- printf "%s-%s" (include "tandem.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "tandem.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object carries. */}}
{{- define "tandem.labels" -}}
helm.sh/chart: {{ include "tandem.chart" . }}
{{ include "tandem.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/component: webhook
app.kubernetes.io/part-of: tandem
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tandem.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tandem.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tandem.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tandem.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "tandem.tlsSecretName" -}}
{{- if and (eq .Values.tls.mode "secret") .Values.tls.secret.name }}
{{- .Values.tls.secret.name }}
{{- else }}
{{- include "tandem.suffixed" (list . "tls") }}
{{- end }}
{{- end }}

{{/* The DNS name the API server calls: the Service's. */}}
{{- define "tandem.serviceDNSName" -}}
{{- printf "%s.%s.svc" (include "tandem.fullname" .) .Release.Namespace }}
{{- end }}

{{/* The backup image reference, for the configuration's backupImage: a digest wins over a tag. */}}
{{- define "tandem.backupImage" -}}
{{- if .Values.backupImage.digest }}
{{- printf "%s@%s" .Values.backupImage.repository .Values.backupImage.digest }}
{{- else }}
{{- printf "%s:%s" .Values.backupImage.repository (.Values.backupImage.tag | default (printf "v%s" .Chart.AppVersion)) }}
{{- end }}
{{- end }}

{{/* The image reference: a digest wins over a tag. */}}
{{- define "tandem.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default (printf "v%s" .Chart.AppVersion)) }}
{{- end }}
{{- end }}

{{/* The namespaces the webhook never gates: its own, kube-system, and any the user adds. */}}
{{- define "tandem.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ concat (list .Release.Namespace "kube-system") .Values.webhook.excludeNamespaces | uniq | toJson }}
  - key: tandem.dev/disabled
    operator: NotIn
    values: ["true"]
{{- with .Values.webhook.namespaceSelector.matchExpressions }}
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .Values.webhook.namespaceSelector.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The serving certificate when the chart makes it (tls.mode: helm): generated once, then read back from the
Secret on every upgrade, so the CA the API server trusts stays stable.
*/}}
{{- define "tandem.generatedTLS" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "tandem.tlsSecretName" .) }}
{{- if and $secret (index $secret.data "tls.crt") (index $secret.data "ca.crt") }}
{{- dict "crt" (index $secret.data "tls.crt") "key" (index $secret.data "tls.key") "ca" (index $secret.data "ca.crt") | toJson }}
{{- else }}
{{- $ca := genCA (printf "%s-ca" (include "tandem.fullname" .)) (int .Values.tls.helm.validityDays) }}
{{- $dns := list (include "tandem.fullname" .) (printf "%s.%s" (include "tandem.fullname" .) .Release.Namespace) (include "tandem.serviceDNSName" .) (printf "%s.cluster.local" (include "tandem.serviceDNSName" .)) }}
{{- $cert := genSignedCert (include "tandem.serviceDNSName" .) nil $dns (int .Values.tls.helm.validityDays) $ca }}
{{- dict "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) "ca" ($ca.Cert | b64enc) | toJson }}
{{- end }}
{{- end }}
