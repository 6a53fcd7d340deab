//go:build tools

// Package tools pins the Jaeger v2 program as a dependency of this wrapper module so that
// `go mod tidy` resolves its full module graph (with the replace from go.mod applied).
package tools

import (
	_ "github.com/jaegertracing/jaeger/cmd/jaeger"
)
