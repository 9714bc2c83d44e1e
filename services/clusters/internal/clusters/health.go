package clusters

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
)

// Monitor checks every cluster of every org periodically and retries the
// Vault destroys that could not be done at once.
type Monitor struct {
	svc      *service
	log      *slog.Logger
	interval time.Duration
	// workers bounds concurrent checks: an unreachable cluster holds one
	// for up to its check timeout.
	workers int
}

// NewMonitor returns a Monitor of svc (the unwrapped service from
// NewService) checking each cluster every interval.
func NewMonitor(svc Service, log *slog.Logger, interval time.Duration) *Monitor {
	return &Monitor{svc: svc.(*service), log: log, interval: interval, workers: 4}
}

// Run checks clusters due until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	tick := min(m.interval/4, 15*time.Second)
	t := time.NewTicker(max(tick, time.Second))
	defer t.Stop()
	for {
		m.checkDue(ctx)
		m.destroyQueued(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (m *Monitor) checkDue(ctx context.Context) {
	due, err := m.svc.store.ClustersToCheck(ctx, time.Now().Add(-m.interval), 100)
	if err != nil {
		if ctx.Err() == nil {
			m.log.WarnContext(ctx, "list clusters to check failed", "error", err)
		}
		return
	}
	sem := make(chan struct{}, m.workers)
	var wg sync.WaitGroup
	for _, c := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			// The checker runs as nobody in particular: it acts for the
			// cluster's org only to read its secret.
			cctx := identity.NewContext(ctx, identity.Identity{Subject: "system:health", Org: c.Org, Role: identity.RoleViewer}, "")
			if _, err := m.svc.check(cctx, c); err != nil {
				if errors.Is(err, ErrSecretsUnavailable) {
					return // recorded health stays as it was; Vault is logged already
				}
				if ctx.Err() == nil {
					m.log.WarnContext(ctx, "cluster check failed", "cluster", c.ID, "org", c.Org, "error", err)
				}
			}
		}()
	}
	wg.Wait()
}

func (m *Monitor) destroyQueued(ctx context.Context) {
	paths, err := m.svc.store.QueuedDestroys(ctx, 100)
	if err != nil {
		if ctx.Err() == nil {
			m.log.WarnContext(ctx, "list queued vault destroys failed", "error", err)
		}
		return
	}
	for _, p := range paths {
		m.svc.destroyQueued(ctx, p)
	}
}
