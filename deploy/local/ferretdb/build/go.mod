// Wrapper module that builds FerretDB's server program (cmd/ferretdb) from the Go module proxy.
//
// A plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.x` binary panics at start:
// its build/version package embeds generated files (build/version/version.txt, ...) that the
// published module lacks. Go refuses overlays for files in the module cache, so
// deploy/local/components/ferretdb.sh copies FerretDB's module source from the module cache next
// to a copy of this file (in $CACHE_DIR/src/ferretdb-<version>, never in the clone), writes
// build/version/version.txt there, and builds the tool through the replace below:
//
//   go mod tidy && go build -o "$BIN_DIR/ferretdb-<version>" github.com/FerretDB/FerretDB/cmd/ferretdb
//
// go.sum is generated there and stays out of the repository.
module integr8scode.local/ferretdb-build

go 1.24

tool github.com/FerretDB/FerretDB/cmd/ferretdb

require github.com/FerretDB/FerretDB v1.24.2

replace github.com/FerretDB/FerretDB => ./FerretDB
