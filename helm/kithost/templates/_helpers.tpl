{{- define "kithost.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kithost.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kithost.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kithost.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "kithost.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kithost.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "api") */}}
{{- define "kithost.componentSelector" -}}
{{ include "kithost.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kithost.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kithost.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kithost.secretName" -}}
{{- default (include "kithost.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "kithost.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Fail the render, with the key at fault, when a required value is missing or contradictory. */}}
{{- define "kithost.validate" -}}
{{- if not .Values.secrets.existingSecret -}}
{{- range $key := list "databaseUrl" "brokerUrl" "secretKey" -}}
{{- if not (index $.Values.secrets $key) -}}
{{- fail (printf "secrets.%s is required (or set secrets.existingSecret)" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not (hasPrefix "https://" .Values.publicUrl) -}}
{{- fail "publicUrl must be an https:// URL (production serves nothing else)" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (ne (urlParse .Values.publicUrl).host .Values.ingress.host) -}}
{{- fail (printf "publicUrl's host (%s) must be ingress.host (%s)" (urlParse .Values.publicUrl).host .Values.ingress.host) -}}
{{- end -}}
{{- $managed := fromYaml (include "kithost.chartConfigData" .) -}}
{{- $secrets := include "kithost.secretNames" . | fromJsonArray -}}
{{- range $name := keys .Values.config.extraEnv | sortAlpha -}}
{{- if hasKey $managed $name -}}
{{- fail (printf "config.extraEnv.%s is set by the chart: use its value instead" $name) -}}
{{- end -}}
{{- if has $name $secrets -}}
{{- fail (printf "config.extraEnv.%s is a secret: put it in the Secret (secrets.*), not the ConfigMap" $name) -}}
{{- end -}}
{{- end -}}
{{- range $proxy := splitList "," .Values.config.trustedProxies -}}
{{- if has (trim $proxy) (list "0.0.0.0/0" "::/0") -}}
{{- fail (printf "config.trustedProxies must not trust every address (%s): name the ingress controller's" (trim $proxy)) -}}
{{- end -}}
{{- end -}}
{{- if .Values.ingress.enabled -}}
{{- range $host := splitList "," .Values.config.allowedHosts -}}
{{- if eq (trim $host) "*" -}}
{{- fail "config.allowedHosts must not be * with the Ingress on: it publishes /healthz and /readyz and checks no Host header (name the hosts, or leave it empty for the Ingress's)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.attachments.storage "s3") (not .Values.attachments.s3.bucket) -}}
{{- fail "attachments.s3.bucket is required when attachments.storage is s3" -}}
{{- end -}}
{{- if and .Values.ingress.tls.enabled (not .Values.ingress.tls.secretName) -}}
{{- fail "ingress.tls.secretName is required when ingress.tls.enabled is true" -}}
{{- end -}}
{{- if le (int .Values.api.terminationGracePeriodSeconds) (add .Values.api.preStopSeconds .Values.api.gracefulShutdownSeconds | int) -}}
{{- fail "api.terminationGracePeriodSeconds must exceed api.preStopSeconds + api.gracefulShutdownSeconds" -}}
{{- end -}}
{{- range $c := list "api" "worker" -}}
{{- $a := (index $.Values $c).autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling.minReplicas must not exceed %s.autoscaling.maxReplicas" $c $c) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Checksums of the configuration: a change rolls the pods. */}}
{{- define "kithost.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end -}}

{{/* The restricted pod security context, shared by every pod. */}}
{{- define "kithost.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kithost.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* What every long-running pod shares: (dict "root" $ "component" "api" "values" .Values.api) */}}
{{- define "kithost.podSpecCommon" -}}
serviceAccountName: {{ include "kithost.serviceAccountName" .root }}
automountServiceAccountToken: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "kithost.podSecurityContext" . | nindent 2 }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "kithost.componentSelector" . | nindent 8 }}
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
{{- end -}}

{{- define "kithost.podMetadata" -}}
metadata:
  labels:
    {{- include "kithost.componentSelector" . | nindent 4 }}
    {{- with .root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- include "kithost.checksums" .root | nindent 4 }}
    {{- with .root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{- define "kithost.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "kithost.fullname" . }}
  - secretRef:
      name: {{ include "kithost.secretName" . }}
{{- end -}}

{{/* The port the API serves /metrics on, apart from the app's port the Ingress routes to
(the workers' too). */}}
{{- define "kithost.metricsPort" -}}
9808
{{- end -}}

{{/* Metrics of every process of a pod summed at each scrape (prometheus_client's
multiprocess mode): the directory exists before the processes start. */}}
{{- define "kithost.metricsEnv" -}}
env:
  - name: PROMETHEUS_MULTIPROC_DIR
    value: /tmp/metrics
{{- end -}}

{{/* Writable scratch space (the root filesystem is read-only), the metrics directory and
the attachment volume. */}}
{{- define "kithost.volumeMounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  - name: metrics
    mountPath: /tmp/metrics
{{- if eq .Values.attachments.storage "volume" }}
  - name: attachments
    mountPath: /data/attachments
{{- end }}
{{- end -}}

{{- define "kithost.volumes" -}}
volumes:
  - name: tmp
    emptyDir: {}
  - name: metrics
    emptyDir: {}
{{- if eq .Values.attachments.storage "volume" }}
  - name: attachments
    persistentVolumeClaim:
      claimName: {{ default (printf "%s-attachments" (include "kithost.fullname" .)) .Values.attachments.volume.existingClaim }}
{{- end }}
{{- end -}}

{{/* The non-secret settings (the ConfigMap's data; the migrations hook repeats them): the
chart's, then config.extraEnv (kithost.validate refuses a name the chart sets). */}}
{{- define "kithost.configData" -}}
{{ include "kithost.chartConfigData" . }}
{{- range $name, $value := .Values.config.extraEnv }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "kithost.chartConfigData" -}}
KITHOST_ENV: production
KITHOST_PUBLIC_URL: {{ .Values.publicUrl | quote }}
{{- with .Values.ingress.visitorHost }}
KITHOST_VISITOR_URL: {{ printf "https://%s" . | quote }}
{{- end }}
KITHOST_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
KITHOST_TASK_QUEUE: {{ .Values.config.taskQueue | quote }}
KITHOST_TRUSTED_PROXIES: {{ .Values.config.trustedProxies | quote }}
KITHOST_ALLOWED_HOSTS: {{ include "kithost.allowedHosts" . | quote }}
KITHOST_DATABASE_POOL_SIZE: {{ .Values.config.databasePoolSize | quote }}
KITHOST_DATABASE_MAX_OVERFLOW: {{ .Values.config.databaseMaxOverflow | quote }}
KITHOST_SERVE_WORKERS: {{ .Values.api.workers | quote }}
KITHOST_GRACEFUL_SHUTDOWN_SECONDS: {{ .Values.api.gracefulShutdownSeconds | quote }}
KITHOST_METRICS_PORT: {{ include "kithost.metricsPort" . | quote }}
KITHOST_DATA_DIR: /tmp/kithost
{{- if eq .Values.attachments.storage "s3" }}
{{- $s3 := .Values.attachments.s3 }}
KITHOST_ATTACHMENT_STORAGE_URL: {{ printf "s3://%s/%s" $s3.bucket $s3.prefix | quote }}
{{- with $s3.endpointUrl }}
KITHOST_S3_ENDPOINT_URL: {{ . | quote }}
{{- end }}
{{- with $s3.region }}
KITHOST_S3_REGION: {{ . | quote }}
{{- end }}
{{- else }}
KITHOST_ATTACHMENT_STORAGE_URL: "file:///data/attachments"
{{- end }}
{{- end -}}

{{/* What the chart's Secret may hold (secrets.*): never in config.extraEnv, the ConfigMap. */}}
{{- define "kithost.secretNames" -}}
{{- list "KITHOST_DATABASE_URL" "KITHOST_MIGRATION_DATABASE_URL" "KITHOST_BROKER_URL" "KITHOST_REDIS_URL" "KITHOST_SECRET_KEY" "KITHOST_OIDC_CLIENT_SECRET" "KITHOST_SMTP_URL" "KITHOST_OPENAI_API_KEY" "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" | toJson -}}
{{- end -}}

{{- define "kithost.allowedHosts" -}}
{{- if .Values.config.allowedHosts -}}
{{- .Values.config.allowedHosts -}}
{{- else if .Values.ingress.enabled -}}
{{- compact (list .Values.ingress.host .Values.ingress.visitorHost) | join "," -}}
{{- else -}}
*
{{- end -}}
{{- end -}}

{{/* The Secret's data: the chart's Secret (the app's pods), and with `migrations` the
migrations hook's copy, the only one holding the tables' owner's URL. */}}
{{- define "kithost.secretData" -}}
{{- $s := .root.Values.secrets -}}
{{- $owner := ternary $s.migrationDatabaseUrl "" .migrations -}}
{{- $vars := dict "KITHOST_DATABASE_URL" $s.databaseUrl "KITHOST_MIGRATION_DATABASE_URL" $owner "KITHOST_BROKER_URL" $s.brokerUrl "KITHOST_REDIS_URL" $s.redisUrl "KITHOST_SECRET_KEY" $s.secretKey "KITHOST_OIDC_CLIENT_SECRET" $s.oidcClientSecret "KITHOST_SMTP_URL" $s.smtpUrl "KITHOST_OPENAI_API_KEY" $s.openaiApiKey "AWS_ACCESS_KEY_ID" $s.s3AccessKeyId "AWS_SECRET_ACCESS_KEY" $s.s3SecretAccessKey -}}
{{- range $name := keys $vars | sortAlpha }}
{{- with index $vars $name }}
{{ $name }}: {{ . | b64enc | quote }}
{{- end }}
{{- end }}
{{- end -}}
