package grpcring

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
)

// Buffer pool tiers: powers of two from 2^minPoolExp to 2^maxPoolExp bytes.
const (
	minPoolExp = 8
	maxPoolExp = 23 // 8 MiB
)

// dirtyPool is a gRPC buffer pool that, unlike gRPC's default pool, does not
// zero buffers it hands out again. gRPC's default pool clears the whole
// capacity of every reused buffer (up to 1 MiB for each received message),
// which cost about a fifth of the CPU time of a loopback all-reduce. Buffers
// are overwritten by gRPC before they are read, so clearing is not needed for
// correctness; the pool serves one process, so no data crosses a trust boundary.
type dirtyPool struct {
	tiers [maxPoolExp - minPoolExp + 1]sync.Pool
}

var _ mem.BufferPool = (*dirtyPool)(nil)

func newDirtyPool() *dirtyPool { return &dirtyPool{} }

// Get returns a buffer of length n from the smallest tier that fits it.
func (p *dirtyPool) Get(n int) *[]byte {
	exp := max(bits.Len(uint(max(n, 1)-1)), minPoolExp)
	if exp > maxPoolExp {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.tiers[exp-minPoolExp].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<exp)
	return &b
}

// Put returns a buffer to the largest tier its capacity covers.
func (p *dirtyPool) Put(b *[]byte) {
	exp := bits.Len(uint(cap(*b))) - 1
	if exp < minPoolExp || exp > maxPoolExp {
		return
	}
	*b = (*b)[:0]
	p.tiers[exp-minPoolExp].Put(b)
}
