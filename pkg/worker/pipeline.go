package worker

import (
	"context"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/engine"
	"github.com/ringtrain/ringtrain/pkg/linalg"
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
// s.rep.next. kept, if not nil, lists the first layer's inputs that are
// not zero in the whole global batch: the bucket of the first layer then
// carries only those weight-gradient columns (the others are zero on every
// worker). s.rep.mu must be held until wait returns.
func (s *service) startAllReduce(ctx context.Context, t allreduce.Transport, cfg allreduce.Config, buf []float32, kept []int32) *bucketedAllReduce {
	residual, next := s.rep.residual, s.rep.next
	l0 := s.rep.net.Layers[0]
	rows, cols := l0.Out, l0.In
	return s.runBuckets(ctx, func(k engine.Bucket) (allreduce.Stats, error) {
		c := cfg
		c.Offset = k.Start
		if k.End == len(buf) {
			c.Exact = engine.Trailing
		}
		part := buf[k.Start:k.End]
		var res, nxt []float32
		if residual != nil {
			res, nxt = residual[k.Start:k.End], next[k.Start:k.End]
		}
		packed := k.First == 0 && kept != nil
		if packed {
			// k.Start is 0: the first layer's weight gradient opens the bucket.
			part, res, nxt = s.pack(part, res, nxt, rows, cols, kept)
		}
		if res != nil {
			linalg.Saxpy(1, res, part) // part += res (1*e is exact: the same sum)
			c.Residual = nxt
		}
		st, err := allreduce.AllReduce(ctx, t, c, part)
		if packed && err == nil {
			s.unpack(buf[k.Start:k.End], part, nxt, next[k.Start:min(k.End, len(next))], rows, cols, kept)
		}
		return st, err
	})
}

// startAllReduceExact is startAllReduce for exact reduction: buf is the
// int64 buffer (engine.ExactBuffer) and the buckets are its own
// (engine.BucketsExact); the integers travel as they are. Every frame's
// integers are converted to float32 gradients (engine.ConvertExact) as
// soon as they hold their sum, while they are still in cache
// (allreduce.Config.Final).
func (s *service) startAllReduceExact(ctx context.Context, t allreduce.Transport, cfg allreduce.Config, buf []int64) *bucketedAllReduce {
	net := s.rep.net
	return s.runBuckets(ctx, func(k engine.Bucket) (allreduce.Stats, error) {
		c := cfg
		c.Offset = k.Start
		c.Final = func(lo, hi int) { engine.ConvertExact(net, k.Start+lo, k.Start+hi) }
		return allreduce.AllReduce(ctx, t, c, buf[k.Start:k.End])
	})
}

// runBuckets starts the goroutine that all-reduces the step's buckets
// (s.rep.buckets) in order, each with reduce once layerDone has released
// it.
func (s *service) runBuckets(ctx context.Context, reduce func(engine.Bucket) (allreduce.Stats, error)) *bucketedAllReduce {
	b := &bucketedAllReduce{buckets: s.rep.buckets, ready: make(chan struct{}, len(s.rep.buckets)), done: make(chan struct{})}
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
			st, err := reduce(k)
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

// pack gathers a first-layer bucket (bucket: the weight gradient, rows x
// cols, then the rest of the bucket) down to its kept columns, and the
// bucket's residuals with it; it returns the packed bucket and residuals
// (nil without the bf16 wire). Residuals of the columns left out stay
// where they are: next keeps them for a later step (set by unpack).
func (s *service) pack(bucket, res, nxt []float32, rows, cols int, kept []int32) (part, pres, pnxt []float32) {
	w := rows * cols
	n := rows*len(kept) + len(bucket) - w
	grow := func(b []float32) []float32 {
		if cap(b) < n {
			return make([]float32, n)
		}
		return b[:n]
	}
	s.rep.packed = grow(s.rep.packed)
	part = s.rep.packed
	engine.PackColumns(part, bucket[:w], rows, cols, kept)
	copy(part[rows*len(kept):], bucket[w:])
	if res != nil {
		s.rep.packR = grow(s.rep.packR)
		pres = s.rep.packR
		engine.PackColumns(pres, res[:w], rows, cols, kept)
		copy(pres[rows*len(kept):], res[w:])
		// The packed next residual is written by the all-reduce into its
		// own buffer; the columns left out carry their residual over.
		copy(nxt, res)
		s.rep.packN = grow(s.rep.packN)
		pnxt = s.rep.packN
	}
	return part, pres, pnxt
}

// unpack scatters an all-reduced packed bucket back: the kept columns of
// the weight gradient, +0 in the others (on every replica), and the rest of
// the bucket; with the bf16 wire it also scatters the packed next residual.
func (s *service) unpack(bucket, part, pnxt, nxt []float32, rows, cols int, kept []int32) {
	w := rows * cols
	engine.UnpackColumns(bucket[:w], part, rows, cols, kept, true)
	copy(bucket[w:], part[rows*len(kept):])
	if pnxt != nil {
		engine.UnpackColumns(nxt[:w], pnxt, rows, cols, kept, false)
		copy(nxt[w:], pnxt[rows*len(kept):])
	}
}
