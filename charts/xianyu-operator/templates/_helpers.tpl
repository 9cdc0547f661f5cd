{{/* Names, labels and small computed values shared by the templates. */}}

{{- define "xianyu.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xianyu.fullname" -}}
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

{{- define "xianyu.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xianyu.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xianyu.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "xianyu.labels" -}}
helm.sh/chart: {{ include "xianyu.chart" . }}
{{ include "xianyu.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: xianyu
{{- end }}

{{- define "xianyu.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "xianyu.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest; tag defaults to the appVersion. */}}
{{- define "xianyu.image" -}}
{{- $img := index . 0 -}}
{{- $root := index . 1 -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end }}

{{- define "xianyu.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/* Namespaces that get the operator's Role (namespaced mode) and the database Secret. */}}
{{- define "xianyu.watchNamespaces" -}}
{{- join "," .Values.watchNamespaces }}
{{- end }}

{{- define "xianyu.databaseSecretName" -}}
{{- if .Values.database.secretName }}
{{- .Values.database.secretName }}
{{- else if or .Values.database.url .Values.postgresql.enabled }}
{{- printf "%s-database" (include "xianyu.fullname" .) }}
{{- end }}
{{- end }}

{{- define "xianyu.postgresqlName" -}}
{{- printf "%s-postgresql" (include "xianyu.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The evaluation PostgreSQL's password: the value, else the one already in the cluster, else a new one. */}}
{{- define "xianyu.postgresqlPassword" -}}
{{- if .Values.postgresql.auth.password }}
{{- .Values.postgresql.auth.password }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "xianyu.postgresqlName" .) }}
{{- if and $existing $existing.data (index $existing.data "password") }}
{{- index $existing.data "password" | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- end }}

{{/* The operator's RBAC rules: files/operator-rules.yaml, generated from operator/src/rbac.ts (make chart-sync). */}}
{{- define "xianyu.operatorRules" -}}
{{- .Files.Get "files/operator-rules.yaml" | fromYamlArray | toYaml }}
{{- end }}
