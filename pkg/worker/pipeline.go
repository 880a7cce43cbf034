package worker

import (
	"context"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/engine"
)

// bucketedAllReduce all-reduces a step's buffer bucket by bucket
// (engine.Buckets: the last layer's gradients and the totals first) while
// backward computes the earlier layers: layerDone, called by backward,
// releases a bucket once its first layer is done, and one goroutine runs
// the buckets' all-reduces in order, on the same transport, as every rank
// does. A failed bucket ends the goroutine (the rest are not sent); the
// step's error is the first one.
type bucketedAllReduce struct {
	buckets []engine.Bucket
	ready   chan struct{} // one token per released bucket, in order
	next    int           // the next bucket layerDone releases
	done    chan struct{}

	// Set by the goroutine before done closes.
	stats allreduce.Stats
	start time.Time // when the first bucket's all-reduce began
	err   error
}

// startAllReduce starts the all-reduce goroutine of a step. cfg is the
// step's configuration (Offset, Exact and Residual are set per bucket);
// with the bf16 wire the worker's residual is added to each bucket of buf
// just before it goes, and what this step's rounding removes is kept in
// s.rep.next. s.rep.mu must be held until wait returns.
func (s *service) startAllReduce(ctx context.Context, t allreduce.Transport, cfg allreduce.Config, buf []float32) *bucketedAllReduce {
	b := &bucketedAllReduce{buckets: s.rep.buckets, ready: make(chan struct{}, len(s.rep.buckets)), done: make(chan struct{})}
	residual, next := s.rep.residual, s.rep.next
	clock := s.clock
	go func() {
		defer close(b.done)
		for _, k := range b.buckets {
			select {
			case <-b.ready:
			case <-ctx.Done():
				b.err = ctx.Err()
				return
			}
			if b.start.IsZero() {
				b.start = clock()
			}
			c := cfg
			c.Offset = k.Start
			if k.End == len(buf) {
				c.Exact = engine.Trailing
			}
			part := buf[k.Start:k.End]
			if residual != nil {
				for i, e := range residual[k.Start:k.End] {
					part[i] += e
				}
				c.Residual = next[k.Start:k.End]
			}
			st, err := allreduce.AllReduce(ctx, t, c, part)
			b.stats.BytesSent += st.BytesSent
			b.stats.BytesRecv += st.BytesRecv
			b.stats.Frames += st.Frames
			if err != nil {
				b.err = err
				return
			}
		}
	}()
	return b
}

// layerDone is backward's hook: it releases the bucket whose first layer
// has just finished.
func (b *bucketedAllReduce) layerDone(layer int) {
	if b.next < len(b.buckets) && layer == b.buckets[b.next].First {
		b.next++
		b.ready <- struct{}{}
	}
}

// wait returns when every bucket is all-reduced or one failed.
func (b *bucketedAllReduce) wait() (allreduce.Stats, time.Time, error) {
	<-b.done
	return b.stats, b.start, b.err
}
