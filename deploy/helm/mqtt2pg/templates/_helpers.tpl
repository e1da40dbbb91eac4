{{/*
Names. The full name is cut at 52 characters: a StatefulSet's pods carry the label
controller-revision-hash=<statefulset name>-<10 characters>, which must fit in 63.
*/}}
{{- define "mqtt2pg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "mqtt2pg.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart name and version, for the helm.sh/chart label */}}
{{- define "mqtt2pg.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of one component: (dict "ctx" $ "component" "bridge"). The bridge's are the StatefulSet's
selector and so must never change between chart versions.
*/}}
{{- define "mqtt2pg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mqtt2pg.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All standard labels of one component: (dict "ctx" $ "component" "bridge") */}}
{{- define "mqtt2pg.labels" -}}
helm.sh/chart: {{ include "mqtt2pg.chart" .ctx }}
{{ include "mqtt2pg.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Values.image.tag | default .ctx.Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: mqtt2pg
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "mqtt2pg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mqtt2pg.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mqtt2pg.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The Secret with MQTT2PG_DB_PASSWORD and MQTT2PG_MQTT_PASSWORD */}}
{{- define "mqtt2pg.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "mqtt2pg.fullname" .) }}
{{- end }}

{{/* The Secret with the owner's conninfo for the migration Job; empty when there is none */}}
{{- define "mqtt2pg.migrationSecretName" -}}
{{- if .Values.migration.existingSecret }}
{{- .Values.migration.existingSecret }}
{{- else if .Values.migration.adminConninfo }}
{{- printf "%s-migration" (include "mqtt2pg.fullname" .) }}
{{- end }}
{{- end }}

{{/* The metrics Service's name: `helm test` and the ServiceMonitor reach the pods through it */}}
{{- define "mqtt2pg.metricsServiceName" -}}
{{- include "mqtt2pg.fullname" . }}
{{- end }}

{{/*
One libconfig scalar. Strings are quoted with \ and " escaped; numbers are written as integers (values from
YAML files reach templates as float64, which Go would print as 1e+06; every numeric key of the bridge is an
integer, values.schema.json says so, and a fraction fails here rather than being cut); booleans as
true/false.
*/}}
{{- define "mqtt2pg.libconfig.scalar" -}}
{{- if kindIs "string" . }}
{{- printf "\"%s\"" (. | replace "\\" "\\\\" | replace "\"" "\\\"") }}
{{- else if kindIs "bool" . }}
{{- ternary "true" "false" . }}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) }}
{{- if ne (float64 (int64 .)) (float64 .) }}
{{- fail (printf "mqtt2pg config: %v is not an integer" .) }}
{{- end }}
{{- int64 . }}
{{- else }}
{{- fail (printf "mqtt2pg config: cannot write a %s (%v) into the libconfig file" (kindOf .) .) }}
{{- end }}
{{- end }}

{{/* The members of one libconfig group, `key = value;` each, one per line (in key order) */}}
{{- define "mqtt2pg.libconfig.members" -}}
{{- $lines := list }}
{{- range $key, $value := . }}
{{- $lines = append $lines (printf "%s = %s;" $key (include "mqtt2pg.libconfig.scalar" $value)) }}
{{- end }}
{{- join "\n" $lines }}
{{- end }}

{{/* Pod anti-affinity from podAntiAffinityPreset, spreading the bridge pods over nodes */}}
{{- define "mqtt2pg.affinity" -}}
{{- if .Values.affinity }}
{{- toYaml .Values.affinity }}
{{- else if eq .Values.podAntiAffinityPreset "soft" }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "mqtt2pg.selectorLabels" (dict "ctx" . "component" "bridge") | nindent 12 }}
{{- else if eq .Values.podAntiAffinityPreset "hard" }}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "mqtt2pg.selectorLabels" (dict "ctx" . "component" "bridge") | nindent 10 }}
{{- end }}
{{- end }}
