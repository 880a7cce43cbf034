package linalg

import "math"

// fixedKernelFunc is the contract of the fused fixed-point micro-kernels:
// for tiles mr x nr tiles of int64 C, one below the other (c points to the
// first one's top-left element, row stride ldc), and every block of block
// depth steps of the k steps of their packed panels (tiles consecutive A
// panels of k groups of mr floats at a; one B panel of k groups of nr
// floats at b), the kernel runs the float32 FMA chain of each element from
// +0, adds RNE(s * scale) to C (scale = 2^fracBits) and returns the
// largest |s| (NaN if any s was NaN). k, block, tiles >= 1. With set != 0
// the first block of every tile is stored over C instead of added (C is
// not read); a narrow kernel ignores set. Where s*scale does not fit int64
// the value added is unspecified.
type fixedKernelFunc func(k, block, tiles int, a, b *float32, c *int64, ldc, set int, scale float32) float32

// fixedKernel describes one fused fixed-point micro-kernel.
type fixedKernel struct {
	name   string
	mr, nr int
	fn     fixedKernelFunc // nil: no fused kernel, use fixedGemmTNGo
	// narrow: the conversion is exact only for |s*scale| < 2^51 (AVX2's
	// float64 rounding trick). Every tile then goes through the scratch
	// tile, and a tile whose max exceeds that is redone by fixedGemmTNGo.
	narrow bool
}

// narrowLimit bounds |s*scale| for a narrow kernel.
const narrowLimit = 1 << 51

// fixedBlockSizes is blockSizes for FixedGemmTN: the depth block is a
// multiple of block (or the whole depth), so that a kernel call never cuts
// a block sum in two.
func (g *Gemm) fixedBlockSizes(m, n, k, block int) (mcb, ncb, kcb int) {
	mr, nr := g.fixed.mr, g.fixed.nr
	kcb = evenSplit(k, max(g.kcMax/block*block, block), block)
	mcb = evenSplit(m, max(mr, g.aBytes/(4*kcb)/mr*mr), mr)
	ncb = evenSplit(n, max(nr, g.bBytes/(4*kcb)/nr*nr), nr)
	return mcb, ncb, kcb
}

// fixedGemm is FixedGemmTN on one thread with the fused kernel: the
// blocked loop nest of gemm (A is k x m, so both operands are packed by
// packCols). A kernel call runs all the blocks of its depth range on one
// tile before it moves to the next tile down, so the int64 C tile stays in
// L1 while the blocks add into it.
// Depth ranges hold whole blocks, and int64 sums are exact, so how the
// depth is cut does not change the result. With set, C is overwritten:
// the first depth range clears each tile just before adding into it.
func (g *Gemm) fixedGemm(m, n, k, block int, a []float32, lda int, b []float32, ldb int, fracBits int, c []int64, ldc int, set bool) float32 {
	scale := float32(math.Ldexp(1, fracBits))
	fk := g.fixed
	mr, nr := fk.mr, fk.nr
	mcb, ncb, kcb := g.fixedBlockSizes(m, n, k, block)
	g.abuf = alignedBuf(g.abuf, roundUp(mcb, mr)*kcb)
	g.bbuf = alignedBuf(g.bbuf, roundUp(ncb, nr)*kcb)
	if len(g.itile) < mr*nr {
		g.itile = make([]int64, mr*nr)
	}
	tile := g.itile[:mr*nr]
	var mx float32
	for jc := 0; jc < n; jc += ncb {
		nc := min(ncb, n-jc)
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			first := set && pc == 0
			for ic := 0; ic < m; ic += mcb {
				mc := min(mcb, m-ic)
				for ir := 0; ir < mc; ir += mr {
					dst := g.abuf[(ir/mr)*kc*mr : (ir/mr+1)*kc*mr]
					packCols(dst, a[pc*lda+ic+ir:], lda, min(mr, mc-ir), mr, kc)
				}
				for jr := 0; jr < nc; jr += nr {
					cols := min(nr, nc-jr)
					bp := g.bbuf[(jr/nr)*kc*nr : (jr/nr+1)*kc*nr]
					if ic == 0 {
						packCols(bp, b[pc*ldb+jc+jr:], ldb, cols, nr, kc)
					}
					ir := 0
					if full := mc / mr; cols == nr && full > 0 && !fk.narrow {
						// All full tiles of the column in one call.
						ci := ic*ldc + jc + jr
						_ = c[ci+(full*mr-1)*ldc+nr-1]
						set := 0
						if first {
							set = 1 // the kernel stores its first block over C
						}
						mx = maxAbsNaN(mx, fk.fn(kc, block, full, &g.abuf[0], &bp[0], &c[ci], ldc, set, scale))
						ir = full * mr
					}
					for ; ir < mc; ir += mr {
						rows := min(mr, mc-ir)
						ap := g.abuf[(ir/mr)*kc*mr : (ir/mr+1)*kc*mr]
						ci := (ic+ir)*ldc + jc + jr
						// Partial tile (or any tile of a narrow kernel): a
						// full tile into zeroed scratch, then only the valid
						// part is added to C.
						clear(tile)
						tmx := fk.fn(kc, block, 1, &ap[0], &bp[0], &tile[0], nr, 0, scale)
						if fk.narrow && !(float64(tmx)*float64(scale) < narrowLimit) {
							// Beyond the narrow kernel's exact range (or NaN):
							// this tile in portable Go, which is exact up to
							// FixedLimit and gives the exact max.
							ai, bj := pc*lda+ic+ir, pc*ldb+jc+jr
							if first {
								clearRows(c[ci:], ldc, rows, cols)
							}
							mx = maxAbsNaN(mx, fixedGemmTNGo(rows, cols, kc, block, a[ai:], lda, b[bj:], ldb, fracBits, c[ci:], ldc))
							continue
						}
						for r := range rows {
							cr := c[ci+r*ldc : ci+r*ldc+cols]
							if first {
								copy(cr, tile[r*nr:r*nr+cols])
								continue
							}
							for j, v := range tile[r*nr : r*nr+cols] {
								cr[j] += v
							}
						}
						if !(tmx <= math.MaxFloat32) {
							// The zero padding gives block sums of exactly 0
							// unless an input is not finite (0*Inf is NaN):
							// recompute the max over the valid part only.
							tmx = fixedTileMaxGo(kc, block, rows, cols, mr, nr, ap, bp)
						}
						mx = maxAbsNaN(mx, tmx)
					}
				}
			}
		}
	}
	return mx
}

// fixedTileMaxGo returns the largest |s| over the block sums of the rows x
// cols top-left part of a tile, from its packed panels.
func fixedTileMaxGo(kc, block, rows, cols, mr, nr int, ap, bp []float32) float32 {
	var mx float32
	for i := range rows {
		for j := range cols {
			for k0 := 0; k0 < kc; k0 += block {
				var s float32
				for kk := k0; kk < min(k0+block, kc); kk++ {
					s = FMA32(ap[kk*mr+i], bp[kk*nr+j], s)
				}
				mx = maxAbsNaN(mx, s)
			}
		}
	}
	return mx
}
