{{/*
Names, labels, images, secret references and the per-service environment.
The five services are rendered by the same templates from this table: component name -> the key of
its values, its image name, its OTel service.name and its settings' env prefix.
*/}}
{{- define "integr8scode.components" -}}
api:
  key: api
  image: api
  otelName: integr8scode-backend
  envPrefix: API
coordinator:
  key: coordinator
  image: coordinator
  otelName: execution-coordinator
  envPrefix: COORDINATOR
dlq-processor:
  key: dlqProcessor
  image: dlq-processor
  otelName: dlq-processor
  envPrefix: DLQ
event-replay:
  key: eventReplay
  image: event-replay
  otelName: event-replay
  envPrefix: REPLAY
notifier:
  key: notifier
  image: notifier
  otelName: notifier
  envPrefix: NOTIFIER
{{- end }}

{{/* The components as a dict (component name -> its row of the table). */}}
{{- define "integr8scode.componentTable" -}}
{{- include "integr8scode.components" . | fromYaml | toJson -}}
{{- end }}

{{- define "integr8scode.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "integr8scode.fullname" -}}
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

{{/* <fullname>-<component>, e.g. myrelease-integr8scode-api. Call with (list $ "api"). */}}
{{- define "integr8scode.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "integr8scode.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "integr8scode.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every pod of the release carries (the default-deny NetworkPolicy selects on them). */}}
{{- define "integr8scode.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "integr8scode.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "integr8scode.labels" -}}
helm.sh/chart: {{ include "integr8scode.chart" . }}
{{ include "integr8scode.releaseSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: integr8scode
{{- with .Values.global.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component. Call with (list $ "api"). */}}
{{- define "integr8scode.selectorLabels" -}}
{{- $root := index . 0 -}}
{{ include "integr8scode.releaseSelectorLabels" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of one component. Call with (list $ "api"). */}}
{{- define "integr8scode.componentLabels" -}}
{{- $root := index . 0 -}}
{{ include "integr8scode.labels" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
metadata.annotations from global.commonAnnotations plus extra ones, on a new line indented by 2,
or nothing. Call with (list $ extra).
*/}}
{{- define "integr8scode.annotations" -}}
{{- $root := index . 0 }}
{{- $all := merge (deepCopy (index . 1 | default dict)) (deepCopy ($root.Values.global.commonAnnotations | default dict)) }}
{{- with $all }}
{{- toYaml (dict "annotations" .) | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The image reference of a service. Call with (list $ $svc "api"): registry, repository and tag
from the service's values, else global.image, else <repositoryPrefix>/<name>:<appVersion>.
*/}}
{{- define "integr8scode.image" -}}
{{- $root := index . 0 }}
{{- $img := (index . 1).image | default dict }}
{{- $name := index . 2 }}
{{- $g := $root.Values.global.image }}
{{- $registry := $img.registry | default $g.registry }}
{{- $repository := $img.repository | default (printf "%s/%s" $g.repositoryPrefix $name) }}
{{- $tag := $img.tag | default $g.tag | default $root.Chart.AppVersion | toString }}
{{- $ref := $repository }}
{{- if $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" $registry) $repository }}{{ end }}
{{- if $img.digest }}
{{- printf "%s@%s" $ref $img.digest }}
{{- else }}
{{- printf "%s:%s" $ref $tag }}
{{- end }}
{{- end }}

{{- define "integr8scode.pullPolicy" -}}
{{- $root := index . 0 }}
{{- $img := (index . 1).image | default dict }}
{{- $img.pullPolicy | default $root.Values.global.image.pullPolicy }}
{{- end }}

{{/* The ServiceAccount name of a component. Call with (list $ $svc "api"). */}}
{{- define "integr8scode.serviceAccountName" -}}
{{- $root := index . 0 }}
{{- $sa := (index . 1).serviceAccount | default dict }}
{{- if $sa.create }}
{{- $sa.name | default (include "integr8scode.componentName" (list $root (index . 2))) }}
{{- else }}
{{- $sa.name | default "default" }}
{{- end }}
{{- end }}

{{/*
Secrets. The JWT secret is required: from secrets.existingSecret, or created by the chart from
secrets.jwtSecret. Rendering stops here otherwise.
*/}}
{{- define "integr8scode.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-secrets" (include "integr8scode.fullname" .) }}
{{- end }}
{{- end }}

{{/* True ("true") when the chart renders its own Secret; fails when there is no JWT secret. */}}
{{- define "integr8scode.createSecret" -}}
{{- $s := .Values.secrets }}
{{- if $s.existingSecret }}
{{- else if not $s.create }}
{{- fail "secrets: set secrets.existingSecret (a Secret holding API_JWT_SECRET) or secrets.create=true with secrets.jwtSecret" }}
{{- else }}
{{- $jwt := required "secrets.jwtSecret is required (>= 32 characters; the api signs tokens with it, the admin APIs verify them): set it, or use secrets.existingSecret" $s.jwtSecret }}
{{- if lt (len $jwt) 32 }}
{{- fail "secrets.jwtSecret must be at least 32 characters (HS256 key)" }}
{{- end }}
{{- if and (not $s.adminPassword) (not (has .Values.global.deploymentEnvironment (list "local" "test" "ci"))) }}
{{- fail (printf "secrets.adminPassword is required in environment %q (the api refuses the default admin password outside local, test and ci)" .Values.global.deploymentEnvironment) }}
{{- end }}
{{- if and (not $s.sealingKeys) (not (has .Values.global.deploymentEnvironment (list "local" "test" "ci"))) }}
{{- fail (printf "secrets.sealingKeys is required in environment %q (INTEGR8SCODE_SECRETS_KEYS: id:key pairs, each key `openssl rand -base64 32`; the api and the notifier refuse to start without it outside local, test and ci)" .Values.global.deploymentEnvironment) }}
{{- end }}
{{- if and $s.adminPassword (or (lt (len $s.adminPassword) 8) (gt (len $s.adminPassword) 128)) }}
{{- fail "secrets.adminPassword must be 8 to 128 characters" }}
{{- end }}
{{- "true" }}
{{- end }}
{{- end }}

{{/* secretKeyRef for one of jwtSecret | adminPassword | sealingKeys | mongoUrl | redisUrl. Call with (list $ "jwtSecret"). */}}
{{- define "integr8scode.secretKeyRef" -}}
{{- $root := index . 0 }}
{{- $what := index . 1 }}
{{- $name := include "integr8scode.secretName" $root }}
{{- $key := index $root.Values.secrets.keys $what }}
{{- if and (eq $what "mongoUrl") $root.Values.mongo.existingSecret }}
{{- $name = $root.Values.mongo.existingSecret }}
{{- $key = $root.Values.mongo.existingSecretKey }}
{{- else if and (eq $what "redisUrl") $root.Values.redis.existingSecret }}
{{- $name = $root.Values.redis.existingSecret }}
{{- $key = $root.Values.redis.existingSecretKey }}
{{- end }}
secretKeyRef:
  name: {{ $name }}
  key: {{ $key }}
{{- end }}

{{/* OTLP endpoint: the configured one, else the in-chart collector's, else the in-chart Jaeger's, else "". */}}
{{- define "integr8scode.otlpEndpoint" -}}
{{- if .Values.telemetry.otlpEndpoint }}
{{- .Values.telemetry.otlpEndpoint }}
{{- else if .Values.otelCollector.enabled }}
{{- printf "http://%s:4317" (include "integr8scode.componentName" (list . "otel-collector")) }}
{{- else if .Values.jaeger.enabled }}
{{- printf "http://%s:4317" (include "integr8scode.componentName" (list . "jaeger")) }}
{{- end }}
{{- end }}

{{/*
Non-secret environment of one service (its ConfigMap's data). Call with (list $ "api" $c $svc).
Precedence (later wins): chart-derived settings, global.env, the service's env.
*/}}
{{- define "integr8scode.configEnv" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $c := index . 2 }}
{{- $svc := index . 3 }}
{{- $v := $root.Values }}
{{- $p := $c.envPrefix }}
{{- $env := dict
  "KAFKA_BOOTSTRAP_SERVERS" $v.kafka.bootstrapServers
  "KAFKA_REQUEST_TIMEOUT_MS" (toString $v.kafka.requestTimeoutMs)
  "MONGO_DATABASE" $v.mongo.database
  "MONGO_SERVER_SELECTION_TIMEOUT_MS" (toString $v.mongo.serverSelectionTimeoutMs)
  "OTEL_SERVICE_NAME" $c.otelName
  "INTEGR8SCODE_TRACES_SAMPLER" $v.telemetry.sampler
  "OTEL_TRACES_SAMPLER_ARG" (toString $v.telemetry.samplerRatio)
  "OTEL_SDK_DISABLED" (toString $v.telemetry.sdkDisabled)
  "OTEL_METRIC_EXPORT_INTERVAL" (toString $v.telemetry.metricExportIntervalMs)
  "INTEGR8SCODE_TRACE_TRUSTED_UPSTREAMS" $v.telemetry.traceTrustedUpstreams
  "DEPLOYMENT_ENVIRONMENT" $v.global.deploymentEnvironment
  (printf "%s_HOST" $p) "0.0.0.0"
  (printf "%s_PORT" $p) (toString $svc.port)
  (printf "%s_LOG_LEVEL" $p) $svc.logLevel
}}
{{- with include "integr8scode.otlpEndpoint" $root }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" . }}
{{- end }}
{{- if eq $name "api" }}
{{- $_ := set $env "API_ADMIN_USERNAME" $svc.adminUsername }}
{{- with $svc.forwardedAllowIps }}
{{- $_ := set $env "FORWARDED_ALLOW_IPS" . }}
{{- end }}
{{- $timeline := $svc.timeline | default dict }}
{{- if $timeline.jaegerQueryUrl }}
{{- $_ := set $env "API_TIMELINE_JAEGER_QUERY_URL" $timeline.jaegerQueryUrl }}
{{- else if $v.jaeger.enabled }}
{{- $_ := set $env "API_TIMELINE_JAEGER_QUERY_URL" (printf "http://%s:16686" (include "integr8scode.componentName" (list $root "jaeger"))) }}
{{- end }}
{{- with $timeline.jaegerUiUrl }}
{{- $_ := set $env "API_TIMELINE_JAEGER_UI_URL" . }}
{{- end }}
{{- end }}
{{- if eq $name "notifier" }}
{{- $_ := set $env "NOTIFIER_PUBLIC_BASE_URL" $svc.publicBaseUrl }}
{{- end }}
{{- range $k, $val := $v.global.env }}
{{- $_ := set $env $k (toString $val) }}
{{- end }}
{{- range $k, $val := $svc.env }}
{{- $_ := set $env $k (toString $val) }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/* The secret environment variables of one service (EnvVar list). Call with (list $ "api"). */}}
{{- define "integr8scode.secretEnv" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
- name: MONGO_URL
  valueFrom:
    {{- include "integr8scode.secretKeyRef" (list $root "mongoUrl") | nindent 4 }}
{{- if has $name (list "api" "dlq-processor" "event-replay") }}
{{- /* dlq-processor and event-replay read API_JWT_SECRET when their own DLQ_/REPLAY_ one is unset. */}}
- name: API_JWT_SECRET
  valueFrom:
    {{- include "integr8scode.secretKeyRef" (list $root "jwtSecret") | nindent 4 }}
{{- end }}
{{- if and (has $name (list "api" "notifier")) (or $root.Values.secrets.existingSecret $root.Values.secrets.sealingKeys) }}
{{- /* The api seals stored credentials and the notifier opens them: the same key ring. */}}
- name: INTEGR8SCODE_SECRETS_KEYS
  valueFrom:
    {{- include "integr8scode.secretKeyRef" (list $root "sealingKeys") | nindent 4 }}
{{- end }}
{{- if eq $name "api" }}
{{- if or $root.Values.secrets.existingSecret $root.Values.secrets.adminPassword }}
- name: API_ADMIN_PASSWORD
  valueFrom:
    {{- include "integr8scode.secretKeyRef" (list $root "adminPassword") | nindent 4 }}
{{- end }}
- name: REDIS_URL
  valueFrom:
    {{- include "integr8scode.secretKeyRef" (list $root "redisUrl") | nindent 4 }}
{{- end }}
{{- end }}

{{/* Pod anti-affinity / topology spread for one component. Call with (list $ $svc "api"). */}}
{{- define "integr8scode.scheduling" -}}
{{- $root := index . 0 }}
{{- $svc := index . 1 }}
{{- $name := index . 2 }}
{{- $g := $root.Values.global }}
{{- if $svc.affinity }}
affinity:
  {{- toYaml $svc.affinity | nindent 2 }}
{{- else if eq $g.podAntiAffinity "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "integr8scode.selectorLabels" (list $root $name) | nindent 14 }}
{{- else if eq $g.podAntiAffinity "hard" }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "integr8scode.selectorLabels" (list $root $name) | nindent 12 }}
{{- end }}
{{- if $svc.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml $svc.topologySpreadConstraints | nindent 2 }}
{{- else if and $g.topologySpread.enabled $g.topologySpread.constraints }}
topologySpreadConstraints:
  {{- range $g.topologySpread.constraints }}
  - topologyKey: {{ .topologyKey }}
    maxSkew: {{ .maxSkew }}
    whenUnsatisfiable: {{ .whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "integr8scode.selectorLabels" (list $root $name) | nindent 8 }}
  {{- end }}
{{- end }}
{{- with $svc.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $svc.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod and container security contexts: the service's own block when not empty, else global. */}}
{{- define "integr8scode.podSecurityContext" -}}
{{- $root := index . 0 }}
{{- $svc := index . 1 }}
{{- toYaml ($svc.podSecurityContext | default $root.Values.global.podSecurityContext) }}
{{- end }}

{{/* A service with `sandboxSeccomp` (the coordinator) gets its container seccompProfile from it:
     Localhost (with localhostProfile), Unconfined or RuntimeDefault (SANDBOX-PRIVILEGES). */}}
{{- define "integr8scode.securityContext" -}}
{{- $root := index . 0 }}
{{- $svc := index . 1 }}
{{- $ctx := deepCopy ($svc.securityContext | default $root.Values.global.securityContext) }}
{{- with $svc.sandboxSeccomp }}
{{- if and $svc.securityContext (hasKey $svc.securityContext "seccompProfile") }}
{{- fail "coordinator.securityContext.seccompProfile: set coordinator.sandboxSeccomp instead (type Localhost | Unconfined | RuntimeDefault)" }}
{{- end }}
{{- $profile := dict "type" .type }}
{{- if eq .type "Localhost" }}
{{- if not .localhostProfile }}
{{- fail "coordinator.sandboxSeccomp.localhostProfile is required with type Localhost (e.g. integr8scode/seccomp-coordinator.json)" }}
{{- end }}
{{- $_ := set $profile "localhostProfile" .localhostProfile }}
{{- end }}
{{- $_ := set $ctx "seccompProfile" $profile }}
{{- end }}
{{- toYaml $ctx }}
{{- end }}
