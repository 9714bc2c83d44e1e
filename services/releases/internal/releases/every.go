package releases

import (
	"context"
	"time"
)

// every runs pass every d until ctx ends: the first time at once when
// atOnce is set, otherwise one interval after the start. The background
// loops of a replica (sweeper, drift checker, instance culler) run on it.
func every(ctx context.Context, d time.Duration, atOnce bool, pass func(context.Context)) error {
	t := time.NewTicker(d)
	defer t.Stop()
	if atOnce {
		pass(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pass(ctx)
	}
}
