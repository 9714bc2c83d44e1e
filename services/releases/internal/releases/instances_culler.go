package releases

import (
	"context"
	"errors"
)

// cullBatch bounds the instances one pass of the culler acts on, of each
// kind (expired, unsettled).
const cullBatch = 100

// Run culls until ctx ends, every CullEvery, the first time at once.
// Every replica may cull: an instance's delete operation has an
// idempotency key of the instance, so their findings are one operation,
// and each write is conditional on the state it read.
func (s *Instances) Run(ctx context.Context) error {
	return every(ctx, s.opts.CullEvery, true, func(ctx context.Context) {
		if n, err := s.Cull(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "cull instances", "error", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "expired instances culled", "instances", n)
		}
	})
}

// Cull queues the deletion of every expired instance (failed launches
// too), settles the instances whose operation ended unnoticed or whose
// location is still unknown, and forgets instances deleted more than 7
// days ago. It returns how many deletions it queued.
func (s *Instances) Cull(ctx context.Context) (int, error) {
	now := s.now()
	var errs []error
	expired, err := s.w.ledger.ExpiredInstances(ctx, now, cullBatch)
	if err != nil {
		return 0, err
	}
	culled := 0
	for _, i := range expired {
		_, op, err := s.w.deleteInstanceOp(ctx, i, s.w.serviceSubject())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		culled++
		s.log.InfoContext(ctx, "instance expired; delete operation queued", "org", i.Org, "instance", i.ID, "application", i.Application,
			"expired", i.Expires, "operation", op.ID)
	}
	unsettled, err := s.w.ledger.UnsettledInstances(ctx, now, cullBatch)
	if err != nil {
		errs = append(errs, err)
	}
	for _, i := range unsettled {
		s.w.settleInstance(ctx, i)
	}
	if n, err := s.w.ledger.PurgeInstances(ctx, now.Add(-instanceRetention)); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "deleted instances forgotten after their retention", "instances", n)
	}
	return culled, errors.Join(errs...)
}
