// Wrapper module that builds the Jaeger v2 binary (github.com/jaegertracing/jaeger/cmd/jaeger).
// `go install github.com/jaegertracing/jaeger/cmd/jaeger@v1.75.0` refuses to build because
// jaeger's own go.mod carries a replace directive; replace directives only apply in the main
// module, so this wrapper repeats it. components/jaeger.sh copies this directory into the cache,
// runs `go mod tidy` (go.sum is generated there, never committed) and builds the tool.
module integr8scode.local/jaeger-build

go 1.24.6

require github.com/jaegertracing/jaeger v1.75.0

// Keep in sync with the replace block of jaeger's go.mod at the version required above.
replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0
