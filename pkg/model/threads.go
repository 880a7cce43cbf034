package model

import "github.com/ringtrain/ringtrain/pkg/linalg"

// minPart is the least number of elements worth a thread of its own in an
// elementwise loop (activations, bias, optimizer): with 16K a loop is split
// from 32K elements on, where it takes tens of microseconds, well above the
// cost of waking a worker. A variable so that tests can split every loop.
var minPart = 16 << 10

// parallelFor runs fn over contiguous ranges [lo, hi) covering [0, n) items
// of width elements each, on p's threads when the loop is large enough.
// Each item is processed by the same operations whichever range it lands
// in, so the split never changes a bit of the result. p may be nil (one
// thread).
func parallelFor(p *linalg.Pool, n, width int, fn func(lo, hi int)) {
	p.For(n, (minPart+width-1)/width, fn)
}
