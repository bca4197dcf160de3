{{/* The chart's name, or nameOverride. */}}
{{- define "openduck.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every object's name. */}}
{{- define "openduck.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "openduck.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "openduck.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels of every object; pass a dict with "ctx" (the root) and "component". */}}
{{- define "openduck.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "openduck.selectorLabels" . }}
{{- end }}

{{/* The labels a component's selector matches. */}}
{{- define "openduck.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openduck.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "openduck.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "openduck.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "openduck.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret names: the user's own, or the ones the chart makes. */}}
{{- define "openduck.clusterSecretName" -}}
{{- .Values.clusterSecret.existingSecret | default (printf "%s-cluster" (include "openduck.fullname" .)) }}
{{- end }}

{{/* Whether clients authenticate with a token (given, existing or generated). */}}
{{- define "openduck.usesToken" -}}
{{- if or .Values.auth.token .Values.auth.existingSecret (not (or .Values.auth.users .Values.auth.usersExistingSecret)) }}true{{ end }}
{{- end }}

{{- define "openduck.tokenSecretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-token" (include "openduck.fullname" .)) }}
{{- end }}

{{- define "openduck.usersSecretName" -}}
{{- .Values.auth.usersExistingSecret | default (printf "%s-users" (include "openduck.fullname" .)) }}
{{- end }}

{{- define "openduck.s3SecretName" -}}
{{- .Values.storage.s3.credentialsSecret | default (printf "%s-s3" (include "openduck.fullname" .)) }}
{{- end }}

{{/* A secret value kept across upgrades: the one the live Secret holds,
     else the given one, else a new random one. Base64-encoded.
     Pass a dict with "ctx", "secret" (name), "key" and "given". */}}
{{- define "openduck.keptSecretValue" -}}
{{- $live := lookup "v1" "Secret" .ctx.Release.Namespace .secret }}
{{- $kept := dig "data" .key "" ($live | default dict) }}
{{- if .given }}{{ .given | b64enc }}{{ else if $kept }}{{ $kept }}{{ else }}{{ randAlphaNum 48 | b64enc }}{{ end }}
{{- end }}

{{/* The etcd client URLs openduck processes use. */}}
{{- define "openduck.etcdEndpoints" -}}
{{- if .Values.etcd.enabled }}
{{- $fullname := include "openduck.fullname" . }}
{{- $urls := list }}
{{- range $i := until (int .Values.etcd.members) }}
{{- $urls = append $urls (printf "http://%s-etcd-%d.%s-etcd.%s.svc.%s:2379" $fullname $i $fullname $.Release.Namespace $.Values.clusterDomain) }}
{{- end }}
{{- join "," $urls }}
{{- else }}
{{- join "," .Values.etcd.endpoints }}
{{- end }}
{{- end }}

{{/* Environment every openduck process shares: the cluster, logs, storage credentials. */}}
{{- define "openduck.clusterEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
# DuckDB keeps per-user files under HOME; the root filesystem is read-only.
- name: HOME
  value: /tmp
- name: OPENDUCK_ETCD
  value: {{ include "openduck.etcdEndpoints" . | quote }}
- name: OPENDUCK_ETCD_PREFIX
  value: {{ .Values.etcd.prefix | quote }}
- name: OPENDUCK_CLUSTER_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "openduck.clusterSecretName" . }}
      key: cluster-secret
- name: OPENDUCK_LOG
  value: {{ .Values.log | quote }}
- name: OPENDUCK_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- if .Values.metrics.enabled }}
- name: OPENDUCK_METRICS_LISTEN
  value: {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}
{{- end }}
{{- with .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.otel.resourceAttributes }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),%s" . | quote }}
{{- else }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE)"
{{- end }}
- name: OPENDUCK_SHUTDOWN_GRACE
  value: {{ .Values.shutdownGrace | quote }}
{{- end }}

{{/* terminationGracePeriodSeconds: the shutdown grace, and 15 s more for what
     follows it (leaving the registry, the checkpoint, closing connections). */}}
{{- define "openduck.terminationGrace" -}}
{{- $grace := .Values.shutdownGrace | toString }}
{{- $n := regexFind "^[0-9]+" $grace | int }}
{{- $unit := trimPrefix (toString $n) $grace }}
{{- $seconds := $n }}
{{- if eq $unit "m" }}{{ $seconds = mul $n 60 }}{{ else if eq $unit "h" }}{{ $seconds = mul $n 3600 }}{{ end }}
{{- add $seconds 15 }}
{{- end }}

{{/* Changes when a value behind the Secrets changes, so pods restart and read
     them again (generated values are kept, so they do not count). Salted with
     the cluster secret: the annotation must not let anyone who can read pods
     test guesses of an inline token. */}}
{{- define "openduck.secretsChecksum" -}}
{{- $salt := include "openduck.keptSecretValue" (dict "ctx" . "secret" (include "openduck.clusterSecretName" .) "key" "cluster-secret" "given" .Values.clusterSecret.value) }}
{{- printf "%s%s" $salt (pick .Values "auth" "clusterSecret" "tls" "clusterTls" "storage" | toJson) | sha256sum }}
{{- end }}

{{/* The metrics port of an openduck container, and the pod annotations that point Prometheus at it. */}}
{{- define "openduck.metricsPort" -}}
{{- if .Values.metrics.enabled }}
- name: metrics
  containerPort: {{ .Values.metrics.port }}
  protocol: TCP
{{- end }}
{{- end }}

{{- define "openduck.metricsAnnotations" -}}
{{- if and .Values.metrics.enabled .Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/* The arguments that put a process's cluster connections on TLS; "role" is coordinator or executor. */}}
{{- define "openduck.clusterTlsArgs" -}}
{{- $t := .ctx.Values.clusterTls }}
{{- if $t.enabled }}
{{- if or (eq .role "executor") $t.mutual }}
- --cluster-tls-cert=/etc/openduck/cluster-tls/tls.crt
- --cluster-tls-key=/etc/openduck/cluster-tls/tls.key
{{- end }}
{{- if or (eq .role "coordinator") $t.mutual }}
- --cluster-tls-ca=/etc/openduck/cluster-tls/ca.crt
{{- end }}
{{- end }}
{{- end }}
