// Wrapper module that builds kube-apiserver (k8s.io/kubernetes/cmd/kube-apiserver) for the
// Helm chart's server-side dry run (../server-dryrun.sh). k8s.io/kubernetes is not meant to be
// used as a module: its go.mod requires every staging module (k8s.io/api, k8s.io/apiserver, ...)
// at v0.0.0 and replaces them with ./staging/src/... paths, and replace directives only apply in
// the main module. server-dryrun.sh copies this directory into the cache, appends one replace per
// staging module (each k8s.io/X => k8s.io/X v0.<minor>.<patch>), generated from k8s.io/kubernetes's
// own go.mod in GOMODCACHE, runs `go mod tidy` there (go.sum never lands in the repo) and builds.
module integr8scode.local/kube-apiserver-build

go 1.26.0

require k8s.io/kubernetes v1.37.2
