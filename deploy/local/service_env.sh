# shellcheck shell=bash
# The environment every service gets in the local profile, natively (components/services.sh) or
# in containers (deploy/containers/run.sh). Each service still has its own defaults; anything set
# in the caller's environment wins. Sourced after lib.sh; never run.

# The five services, name:module:port:env-prefix (each reads <prefix>_HOST and <prefix>_PORT).
SERVICES=(
  "api:integr8scode_api:${API_PORT:-8000}:API"
  "coordinator:integr8scode_coordinator:${COORDINATOR_PORT:-8001}:COORDINATOR"
  "dlq-processor:integr8scode_dlq_processor:${DLQ_PORT:-8002}:DLQ"
  "event-replay:integr8scode_event_replay:${REPLAY_PORT:-8003}:REPLAY"
  "notifier:integr8scode_notifier:${NOTIFIER_PORT:-8004}:NOTIFIER"
)

# The variables service_env sets, for passing them on by name (`podman run -e NAME`).
SERVICE_ENV_NAMES=(OTEL_EXPORTER_OTLP_ENDPOINT KAFKA_BOOTSTRAP_SERVERS MONGO_URL REDIS_URL DEPLOYMENT_ENVIRONMENT COORDINATOR_LEASE_S API_RATE_LIMIT_AUTH_LIMIT NOTIFIER_ALLOW_LOOPBACK_TARGETS API_NOTIFICATIONS_ALLOW_HTTP DLQ_DEFAULT_MAX_ATTEMPTS DLQ_DEFAULT_INITIAL_BACKOFF_S DLQ_DEFAULT_MAX_BACKOFF_S DLQ_POLL_INTERVAL_S API_JWT_SECRET INTEGR8SCODE_SECRETS_KEYS)

service_env() {
  export OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:$OTLP_GRPC_PORT}"
  export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
  export MONGO_URL="${MONGO_URL:-mongodb://127.0.0.1:$MONGO_PORT}"
  export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
  export DEPLOYMENT_ENVIRONMENT="${DEPLOYMENT_ENVIRONMENT:-local}"
  # Local profile: a dead coordinator's runs are recovered within seconds, not a minute.
  export COORDINATOR_LEASE_S="${COORDINATOR_LEASE_S:-6}"
  # The tests register many users from 127.0.0.1; production keeps the stricter default.
  export API_RATE_LIMIT_AUTH_LIMIT="${API_RATE_LIMIT_AUTH_LIMIT:-10000}"
  # Local receivers (the tests' webhook and Slack stand-ins) listen on 127.0.0.1 over http.
  export NOTIFIER_ALLOW_LOOPBACK_TARGETS="${NOTIFIER_ALLOW_LOOPBACK_TARGETS:-true}"
  export API_NOTIFICATIONS_ALLOW_HTTP="${API_NOTIFICATIONS_ALLOW_HTTP:-true}"
  # Local profile: dead letters are retried within seconds (3 attempts, 1 s initial, 3 s cap),
  # so a failed message's whole retry story fits in a test; production waits 30 s … 1 h, 5 times.
  export DLQ_DEFAULT_MAX_ATTEMPTS="${DLQ_DEFAULT_MAX_ATTEMPTS:-3}"
  export DLQ_DEFAULT_INITIAL_BACKOFF_S="${DLQ_DEFAULT_INITIAL_BACKOFF_S:-1}"
  export DLQ_DEFAULT_MAX_BACKOFF_S="${DLQ_DEFAULT_MAX_BACKOFF_S:-3}"
  # The retry scheduler polls Mongo for due dead letters this often (production: 1 s).
  export DLQ_POLL_INTERVAL_S="${DLQ_POLL_INTERVAL_S:-0.5}"
  # One secret per clone, kept across restarts, so tokens survive restarting the api.
  local secret_file="$CONF_DIR/jwt_secret"
  [ -s "$secret_file" ] || (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n=' >"$secret_file")
  API_JWT_SECRET="${API_JWT_SECRET:-$(cat "$secret_file")}"
  export API_JWT_SECRET
  # The key ring that seals stored credentials (api writes, notifier reads): one 32-byte key per
  # clone, kept beside the clone's data (.local/data) so restarts keep opening what is stored.
  # Rotate by editing the file (new key first, comma, old key), restarting, then
  # `uv run --no-sync integr8scode-api rotate-secrets` (services/api/README.md).
  local keys_file="$CONF_DIR/secrets_keys"
  [ -s "$keys_file" ] || (umask 077 && printf 'local-%s:%s\n' "$(date +%Y%m%d)" \
    "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$keys_file")
  INTEGR8SCODE_SECRETS_KEYS="${INTEGR8SCODE_SECRETS_KEYS:-$(tr -d '\n' <"$keys_file")}"
  export INTEGR8SCODE_SECRETS_KEYS
}
