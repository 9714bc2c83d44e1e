package chartrepo

import (
	"context"
	_ "embed" // chartserve's source

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// serverSource is built on its own (standard library only), so that it
// builds wherever this package runs, whatever the working folder.
//
//go:embed cmd/chartserve/main.go
var serverSource []byte

// serverBinary builds cmd/chartserve once per source version into the cache
// and returns its path. The server is a process of its own, not a goroutine
// of `devstack up`, so that it outlives `up --detach` and is stopped like
// every other component.
func serverBinary(ctx context.Context) (string, error) {
	return devenv.BuildSource(ctx, "chartserve", serverSource)
}
