//go:build tools

// Package tools pins kube-apiserver as a dependency of this wrapper module so that
// `go mod tidy` resolves its full module graph (with the generated replaces applied).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
