package model

import "github.com/ringtrain/ringtrain/pkg/linalg"

// Dense is one block of the chain: t = W x + b, out = phi(t).
//
// W is row-major with shape [Out, In]; W, B, DW and DB are views into the
// network's contiguous parameter and gradient buffers.
type Dense struct {
	In, Out int
	Act     Activation
	W, B    []float32 // B is nil without bias
	DW, DB  []float32
	// IDW and IDB are the fixed-point gradient sums of exact reduction,
	// views into Network.IGrads (nil when it is off).
	IDW, IDB []int64

	// Per-batch workspace, owned by the block: the input it saw, its
	// pre-activation and its output, each rows x width.
	x    []float32
	t    []float32
	out  []float32
	rows int
}

// Forward computes the block's output for a batch of rows (x is rows x In,
// row-major) and keeps what Backward needs. The returned slice is owned by the
// block and valid until the next Forward.
func (d *Dense) Forward(p *linalg.Pool, x []float32, rows int) []float32 {
	d.rows = rows
	d.x = x[:rows*d.In]
	d.t = grow(d.t, rows*d.Out)
	d.out = grow(d.out, rows*d.Out)
	// t = x W^T: [rows, In] x [In, Out].
	p.Sgemm(false, true, rows, d.Out, d.In, 1, d.x, d.In, d.W, d.In, 0, d.t, d.Out)
	// t += b, out = phi(t), split by rows among the threads.
	parallelFor(p, rows, d.Out, func(r0, r1 int) {
		t, out := d.t[r0*d.Out:r1*d.Out], d.out[r0*d.Out:r1*d.Out]
		if d.B != nil {
			for r := 0; r+d.Out <= len(t); r += d.Out {
				row := t[r : r+d.Out]
				for j, b := range d.B {
					row[j] += b
				}
			}
		}
		d.Act.apply(t, out, d.Out)
	})
	return d.out
}

// Backward takes dL/d(out) in dOut (rows x Out; overwritten with dL/dt) and
// accumulates dL/dW and dL/db into DW and DB (criterion B). If dIn is not nil
// it receives dL/dx (rows x In), criterion A. When preActivation is true dOut
// already holds dL/dt (a fused loss layer did the activation's part).
func (d *Dense) Backward(p *linalg.Pool, dOut []float32, preActivation bool, dIn []float32) {
	d.backward(p, dOut, preActivation, dIn, true, nil)
}

// backward is Backward; with accumulate false it overwrites DW and DB
// instead of adding to them, which saves clearing them first. paramsDone,
// if not nil, is called once DW and DB are final, before dL/dx is computed.
func (d *Dense) backward(p *linalg.Pool, dOut []float32, preActivation bool, dIn []float32, accumulate bool, paramsDone func()) {
	rows := d.rows
	dt := dOut[:rows*d.Out]
	if !preActivation {
		parallelFor(p, rows, d.Out, func(r0, r1 int) {
			lo, hi := r0*d.Out, r1*d.Out
			d.Act.backward(d.t[lo:hi], d.out[lo:hi], dt[lo:hi], d.Out)
		})
	}
	// dW += dt^T x: [Out, rows] x [rows, In].
	beta := float32(1)
	if !accumulate {
		beta = 0
	}
	p.Sgemm(true, false, d.Out, d.In, rows, 1, dt, d.Out, d.x, d.In, beta, d.DW, d.In)
	if d.DB != nil {
		// db += column sums of dt, split by columns: each sum still runs
		// over the rows in order.
		parallelFor(p, d.Out, rows, func(j0, j1 int) {
			db := d.DB[j0:j1]
			if !accumulate {
				clear(db)
			}
			for r := 0; r < rows; r++ {
				for j, v := range dt[r*d.Out+j0 : r*d.Out+j1] {
					db[j] += v
				}
			}
		})
	}
	if paramsDone != nil {
		paramsDone()
	}
	if dIn != nil {
		// dx = dt W: [rows, Out] x [Out, In].
		p.Sgemm(false, false, rows, d.In, d.Out, 1, dt, d.Out, d.W, d.In, 0, dIn[:rows*d.In], d.In)
	}
}

// NumParams returns the number of parameters the block owns.
func (d *Dense) NumParams() int {
	n := d.In * d.Out
	if d.B != nil {
		n += d.Out
	}
	return n
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
