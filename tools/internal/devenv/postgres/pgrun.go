package postgres

import (
	"context"
	_ "embed" // pgrun's source

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// pgrunSource is built on its own (standard library only), so that it
// builds wherever this package runs, whatever the working folder.
//
//go:embed cmd/pgrun/main.go
var pgrunSource []byte

// pgrunBinary builds cmd/pgrun once per source version into the cache and
// returns its path. pgrun stays postgres's parent (so the recorded pid and
// binary stay true), drops to the postgres user when run as root, and turns
// SIGTERM into postgres's fast shutdown.
func pgrunBinary(ctx context.Context) (string, error) {
	return devenv.BuildSource(ctx, "pgrun", pgrunSource)
}
