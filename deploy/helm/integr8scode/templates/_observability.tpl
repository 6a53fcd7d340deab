{{/*
Configurations of the optional in-chart collector and Jaeger: the same pipelines as
deploy/otel/collector.yaml and deploy/otel/jaeger.yaml (keep them in step).
*/}}
{{- define "integr8scode.collectorConfig" -}}
{{- $oc := .oc -}}
# Receive OTLP, tail-sample traces (errors and slow ones always kept), forward them; expose
# OTLP metrics for Prometheus.
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, tail_sampling, batch]
      exporters: [otlp/traces]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [prometheus]
  telemetry:
    resource:
      service.name: otel-collector
    logs:
      level: info
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 0.0.0.0
                port: 8888

extensions:
  health_check:
    endpoint: 0.0.0.0:13133

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318

processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: {{ $oc.memoryLimitMib | int }}
    spike_limit_mib: {{ div ($oc.memoryLimitMib | int) 4 }}

  # A trace is kept when any policy samples it, and kept or dropped whole: spans that arrive after
  # the decision (DLQ retries, slow notifications) follow it through the decision caches; past
  # them, the probabilistic policy hashes the trace id and decides the same again.
  tail_sampling:
    decision_wait: {{ $oc.decisionWait }}
    num_traces: {{ $oc.numTraces | int }}
    expected_new_traces_per_sec: {{ $oc.expectedNewTracesPerSec | int }}
    decision_cache:
      sampled_cache_size: {{ $oc.decisionCacheSize | int }}
      non_sampled_cache_size: {{ $oc.decisionCacheSize | int }}
    policies:
      - name: errors
        type: status_code
        status_code:
          status_codes: [ERROR]
      - name: slow
        type: latency
        latency:
          threshold_ms: {{ $oc.slowTraceThresholdMs | int }}
      - name: sample-rest
        type: probabilistic
        probabilistic:
          sampling_percentage: {{ $oc.samplingPercent }}

  batch:
    timeout: 200ms
    send_batch_size: 1024

exporters:
  otlp/traces:
    endpoint: {{ .exporter }}
    tls:
      insecure: {{ $oc.exporterInsecure }}

  prometheus:
    endpoint: 0.0.0.0:8889
{{- end }}

{{- define "integr8scode.jaegerConfig" -}}
# Jaeger v2, in-memory storage. Query tracing is off so Jaeger does not fill its storage with itself.
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]

extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 0.0.0.0:13133

  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: {{ .maxTraces | int }}

  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: 0.0.0.0:16686
    grpc:
      endpoint: 0.0.0.0:16685

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318

processors:
  batch:
    timeout: 200ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
{{- end }}
