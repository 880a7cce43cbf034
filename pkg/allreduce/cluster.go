package allreduce

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// RunRing runs AllReduce (of float32 or int64 buffers) on every rank of a ring at once, as a whole test (or
// benchmark) cluster in one process: rank r uses ts[r] and bufs[r], with
// cfg.Rank and cfg.Size set from r and len(ts). When a rank fails the others are
// cancelled; the returned error is the first failure (joined with later ones
// that are not just that cancellation). Stats are per rank.
func RunRing[E Element](ctx context.Context, ts []Transport, cfg Config, bufs [][]E) ([]Stats, error) {
	if len(ts) != len(bufs) {
		return nil, fmt.Errorf("allreduce: %d transports for %d buffers", len(ts), len(bufs))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stats := make([]Stats, len(ts))
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for r := range ts {
		wg.Go(func() {
			c := cfg
			c.Rank, c.Size = r, len(ts)
			stats[r], errs[r] = AllReduce(ctx, ts[r], c, bufs[r])
			if errs[r] != nil {
				cancel(errs[r])
			}
		})
	}
	wg.Wait()
	if errors.Join(errs...) == nil {
		return stats, nil
	}
	first := context.Cause(ctx)
	all := []error{first}
	for _, err := range errs {
		if err != nil && !errors.Is(err, first) && err != first {
			all = append(all, err)
		}
	}
	return stats, errors.Join(all...)
}
