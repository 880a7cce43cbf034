//go:build amd64

#include "textflag.h"

// Fixed-point kernels (see fixed.go). Go assembler operand order is
// reversed from Intel's: VFMADD231PS b, a, acc means acc += a*b.

// ---------------------------------------------------------------------------
// fixedKernel8x48AVX512: the fused FMA-chain / convert / accumulate kernel.
//
// Registers: Z0..Z23 accumulate one block (row r of the tile uses
// Z(3r)..Z(3r+2)), Z24..Z26 hold one row of packed B, Z27..Z28 take
// broadcasts of packed A, Z29 = 0x7fffffff (abs mask), Z30 = 2^fracBits
// (float32), Z31 = running max of |s| as unsigned bit patterns. During the
// conversion at a block's end Z24..Z28 are scratch.
//
// The max uses integer VPMAXUD on sign-cleared bit patterns: for
// non-negative floats the bit patterns order like the values, and every
// NaN pattern is above +Inf, so a NaN anywhere makes the max a NaN.
//
// GP: CX depth steps left, R9 block, R10 steps of the current block,
// SI packed A, DX packed B, DI C tile, R8 ldc*8, AX C row pointer.

#define FMA3_F(bc, r0, r1, r2) \
	VFMADD231PS Z24, bc, r0; \
	VFMADD231PS Z25, bc, r1; \
	VFMADD231PS Z26, bc, r2

#define STEP_F(aoff, boff) \
	VMOVUPS (boff)(DX), Z24; \
	VMOVUPS (boff+64)(DX), Z25; \
	VMOVUPS (boff+128)(DX), Z26; \
	VBROADCASTSS (aoff)(SI), Z27; \
	VBROADCASTSS (aoff+4)(SI), Z28; \
	FMA3_F(Z27, Z0, Z1, Z2); \
	VBROADCASTSS (aoff+8)(SI), Z27; \
	FMA3_F(Z28, Z3, Z4, Z5); \
	VBROADCASTSS (aoff+12)(SI), Z28; \
	FMA3_F(Z27, Z6, Z7, Z8); \
	VBROADCASTSS (aoff+16)(SI), Z27; \
	FMA3_F(Z28, Z9, Z10, Z11); \
	VBROADCASTSS (aoff+20)(SI), Z28; \
	FMA3_F(Z27, Z12, Z13, Z14); \
	VBROADCASTSS (aoff+24)(SI), Z27; \
	FMA3_F(Z28, Z15, Z16, Z17); \
	VBROADCASTSS (aoff+28)(SI), Z28; \
	FMA3_F(Z27, Z18, Z19, Z20); \
	FMA3_F(Z28, Z21, Z22, Z23)

// One accumulator (16 block sums, zacc/yacc its zmm/ymm names) at int64
// offset off of the C row at AX: max |s|, scale, convert 2 x 8 lanes to
// int64 (VCVTPS2QQ rounds to nearest even under Go's default MXCSR), add
// into C.
#define CONV1_F(zacc, yacc, off) \
	VPANDD Z29, zacc, Z24; \
	VPMAXUD Z24, Z31, Z31; \
	VMULPS Z30, zacc, zacc; \
	VEXTRACTF32X8 $1, zacc, Y25; \
	VCVTPS2QQ yacc, Z26; \
	VCVTPS2QQ Y25, Z27; \
	VPADDQ (off)(AX), Z26, Z26; \
	VPADDQ (off+64)(AX), Z27, Z27; \
	VMOVDQU64 Z26, (off)(AX); \
	VMOVDQU64 Z27, (off+64)(AX)

#define CONVROW_F(z0, y0, z1, y1, z2, y2) \
	CONV1_F(z0, y0, 0); \
	CONV1_F(z1, y1, 128); \
	CONV1_F(z2, y2, 256); \
	ADDQ R8, AX

// func fixedKernel8x48AVX512(k, block int, a, b *float32, c *int64, ldc int, scale float32) float32
TEXT ·fixedKernel8x48AVX512(SB), NOSPLIT, $0-60
	MOVQ k+0(FP), CX
	MOVQ block+8(FP), R9
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), DX
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), R8
	SHLQ $3, R8
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z29
	VBROADCASTSS scale+48(FP), Z30
	VPXORD Z31, Z31, Z31

blockF:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23

	// R10 = min(block, CX) steps in this block.
	MOVQ R9, R10
	CMPQ CX, R10
	CMOVQLT CX, R10
	SUBQ R10, CX

	MOVQ R10, BX
	SHRQ $2, BX
	ANDQ $3, R10
	TESTQ BX, BX
	JZ   tailF

loop4F:
	STEP_F(0, 0)
	STEP_F(32, 192)
	STEP_F(64, 384)
	STEP_F(96, 576)
	ADDQ $128, SI
	ADDQ $768, DX
	DECQ BX
	JNZ  loop4F

tailF:
	TESTQ R10, R10
	JZ    convF

loop1F:
	STEP_F(0, 0)
	ADDQ $32, SI
	ADDQ $192, DX
	DECQ R10
	JNZ  loop1F

convF:
	MOVQ DI, AX
	CONVROW_F(Z0, Y0, Z1, Y1, Z2, Y2)
	CONVROW_F(Z3, Y3, Z4, Y4, Z5, Y5)
	CONVROW_F(Z6, Y6, Z7, Y7, Z8, Y8)
	CONVROW_F(Z9, Y9, Z10, Y10, Z11, Y11)
	CONVROW_F(Z12, Y12, Z13, Y13, Z14, Y14)
	CONVROW_F(Z15, Y15, Z16, Y16, Z17, Y17)
	CONVROW_F(Z18, Y18, Z19, Y19, Z20, Y20)
	CONVROW_F(Z21, Y21, Z22, Y22, Z23, Y23)
	TESTQ CX, CX
	JNZ   blockF

	// Horizontal unsigned max of Z31's 16 lanes.
	VMOVDQA64 Z31, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPMAXUD Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPMAXUD X1, X0, X0
	VMOVSS X0, ret+56(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// func fixedToFloatAVX512(dst *float32, src *int64, n int, inv float32)
//
// dst[i] = float32(src[i]) * inv for i < n, n a multiple of 32: VCVTQQ2PS
// rounds to nearest even (Go's float32(int64) on amd64 does the same),
// then one float32 multiply. Requires AVX512F and AVX512DQ.
TEXT ·fixedToFloatAVX512(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS inv+24(FP), Z4
	SHRQ $5, CX
	JZ   doneTF

loopTF:
	VCVTQQ2PS (SI), Y0
	VCVTQQ2PS 64(SI), Y1
	VCVTQQ2PS 128(SI), Y2
	VCVTQQ2PS 192(SI), Y3
	VINSERTF32X8 $1, Y1, Z0, Z0
	VINSERTF32X8 $1, Y3, Z2, Z2
	VMULPS Z4, Z0, Z0
	VMULPS Z4, Z2, Z2
	VMOVUPS Z0, (DI)
	VMOVUPS Z2, 64(DI)
	ADDQ $256, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  loopTF

doneTF:
	VZEROUPPER
	RET
