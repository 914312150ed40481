{{/* The chart name, or nameOverride. */}}
{{- define "tollgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: objects are named after it (DNS label, 63 chars). */}}
{{- define "tollgate.fullname" -}}
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

{{- define "tollgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tollgate.labels" -}}
helm.sh/chart: {{ include "tollgate.chart" . }}
{{ include "tollgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tollgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tollgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tollgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tollgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Service's in-cluster DNS name, as Istio's extensionProviders want it. */}}
{{- define "tollgate.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "tollgate.fullname" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* Where the container reads its config: the ConfigMap mounted as a directory. */}}
{{- define "tollgate.configPath" -}}
/etc/tollgate/config/tollgate.yaml
{{- end }}

{{/*
The tollgate config file: `.Values.config` with the listen addresses the
chart owns, so the container ports, the Service and the config never
disagree. Refuses a config that sets them itself.
*/}}
{{- define "tollgate.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $server := dict }}
{{- if hasKey $config "server" }}
{{- $server = get $config "server" }}
{{- if not (kindIs "map" $server) }}
{{- fail "config.server must be a map" }}
{{- end }}
{{- end }}
{{- range $key := list "grpc_listen" "http_enabled" "http_listen" "admin_listen" }}
{{- if hasKey $server $key }}
{{- fail (printf "config.server.%s: the chart sets it from the grpc, http and admin values; remove it from config" $key) }}
{{- end }}
{{- end }}
{{- $_ := set $server "grpc_listen" (printf "0.0.0.0:%d" (int .Values.grpc.port)) }}
{{- if .Values.http.enabled }}
{{- $_ := set $server "http_enabled" true }}
{{- $_ := set $server "http_listen" (printf "0.0.0.0:%d" (int .Values.http.port)) }}
{{- end }}
{{- $_ := set $server "admin_listen" (printf "0.0.0.0:%d" (int .Values.admin.port)) }}
{{- $_ := set $config "server" $server }}
{{- toYaml $config }}
{{- end }}

{{/* Checks across values that the schema cannot express. */}}
{{- define "tollgate.validate" -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.admin.enabled) }}
{{- fail "serviceMonitor.enabled: Prometheus scrapes the admin port through the Service; set admin.enabled=true too" }}
{{- end }}
{{- $ports := list (int .Values.grpc.port) }}
{{- if .Values.http.enabled }}{{ $ports = append $ports (int .Values.http.port) }}{{ end }}
{{- $ports = append $ports (int .Values.admin.port) }}
{{- if ne (len $ports) (len (uniq $ports)) }}
{{- fail "grpc.port, http.port and admin.port: listeners need different ports" }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (kindIs "invalid" $pdb.minAvailable) (kindIs "invalid" $pdb.maxUnavailable) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if and .Values.secrets.env (not .Values.secrets.existingSecret) }}
{{- fail "secrets.env: name the Secret in secrets.existingSecret" }}
{{- end }}
{{- end }}
