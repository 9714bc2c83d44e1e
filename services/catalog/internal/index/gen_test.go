package index

import (
	"testing"

	"helm.sh/helm/v3/pkg/repo"

	"github.com/slipwayhq/slipway/services/catalog/internal/index/indextest"
)

// genIndexFile is indextest.IndexFile: a deterministic index shaped like
// Bitnami's.
func genIndexFile(charts, versionsPerChart int) *repo.IndexFile {
	return indextest.IndexFile(charts, versionsPerChart)
}

// genIndex writes genIndexFile's index as `helm repo index` does and returns
// the file's path and bytes.
func genIndex(tb testing.TB, charts, versionsPerChart int) (string, []byte) {
	tb.Helper()
	return indextest.Write(tb, charts, versionsPerChart, false)
}

// genIndexJSON is genIndex written as JSON (helm repo index --json).
func genIndexJSON(tb testing.TB, charts, versionsPerChart int) (string, []byte) {
	tb.Helper()
	return indextest.Write(tb, charts, versionsPerChart, true)
}
