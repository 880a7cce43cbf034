//go:build amd64

#include "textflag.h"

// Fixed-point kernels (see fixed.go). Go assembler operand order is
// reversed from Intel's: VFMADD231PS b, a, acc means acc += a*b.

// ---------------------------------------------------------------------------
// fixedKernel8x48AVX512: the fused FMA-chain / convert / accumulate
// kernel, software-pipelined. For each block of block depth steps it runs
// the FMA chains of the 8 x 48 tile from zeroed accumulators. At a block's
// end the accumulators are only max-tracked, scaled and spilled to a
// 64-byte aligned scratch in the frame (R14); their conversion to int64
// (VCVTPS2QQ: round to nearest even under Go's default MXCSR) and addition
// into C run from memory, two tile rows per 4 depth steps, interleaved
// with the FMAs of the next block, where they use pipes the FMAs leave
// idle (converting in one burst at the block's end cost about 25% of the
// FMA throughput at block 16, this about 15%). VCVTPS2QQ reads its 8
// floats from memory, so no lane extraction is needed. R13 counts the tile
// rows still pending, R11 and R12 point to the next pending row in the
// scratch and in C. Short blocks (under 16 steps) convert the rest at
// their end. One call runs tiles tiles down a column of C (consecutive A
// panels, the same B panel), so the pipeline also carries the last
// block's conversion of one tile into the first block of the next.
//
// The max uses integer VPMAXUD on sign-cleared bit patterns: for
// non-negative floats the bit patterns order like the values, and every
// NaN pattern is above +Inf, so a NaN anywhere makes the max a NaN.
//
// Registers: Z0..Z23 accumulators, Z24..Z26 one row of B, Z27 broadcasts
// of A (renaming makes one register enough), Z28 scratch, Z29 abs mask,
// Z30 fracBits<<23 (int32), Z31 max bits.

#define FMA3_F(bc, r0, r1, r2) \
	VFMADD231PS Z24, bc, r0; \
	VFMADD231PS Z25, bc, r1; \
	VFMADD231PS Z26, bc, r2

#define STEP_P(aoff, boff) \
	VMOVUPS (boff)(DX), Z24; \
	VMOVUPS (boff+64)(DX), Z25; \
	VMOVUPS (boff+128)(DX), Z26; \
	VBROADCASTSS (aoff)(SI), Z27; \
	FMA3_F(Z27, Z0, Z1, Z2); \
	VBROADCASTSS (aoff+4)(SI), Z27; \
	FMA3_F(Z27, Z3, Z4, Z5); \
	VBROADCASTSS (aoff+8)(SI), Z27; \
	FMA3_F(Z27, Z6, Z7, Z8); \
	VBROADCASTSS (aoff+12)(SI), Z27; \
	FMA3_F(Z27, Z9, Z10, Z11); \
	VBROADCASTSS (aoff+16)(SI), Z27; \
	FMA3_F(Z27, Z12, Z13, Z14); \
	VBROADCASTSS (aoff+20)(SI), Z27; \
	FMA3_F(Z27, Z15, Z16, Z17); \
	VBROADCASTSS (aoff+24)(SI), Z27; \
	FMA3_F(Z27, Z18, Z19, Z20); \
	VBROADCASTSS (aoff+28)(SI), Z27; \
	FMA3_F(Z27, Z21, Z22, Z23)

// Convert 8 spilled (scaled) floats at soff(R11) and add them to the 8
// int64 at coff(R12).
#define CVT8_P(soff, coff) \
	VCVTPS2QQ (soff)(R11), Z28; \
	VPADDQ (coff)(R12), Z28, Z28; \
	VMOVDQU64 Z28, (coff)(R12)

// Convert 8 spilled (scaled) floats at soff(R11) and store them over the
// 8 int64 at coff(R12) (the first block of a tile with set: C is not read).
#define CVT8_S(soff, coff) \
	VCVTPS2QQ (soff)(R11), Z28; \
	VMOVDQU64 Z28, (coff)(R12)

// One pending tile row, stored over C: 48 values.
#define CONVROW_S \
	CVT8_S(0, 0); \
	CVT8_S(32, 64); \
	CVT8_S(64, 128); \
	CVT8_S(96, 192); \
	CVT8_S(128, 256); \
	CVT8_S(160, 320); \
	ADDQ $192, R11; \
	ADDQ R8, R12

// One pending tile row: 48 values.
#define CONVROW_P \
	CVT8_P(0, 0); \
	CVT8_P(32, 64); \
	CVT8_P(64, 128); \
	CVT8_P(96, 192); \
	CVT8_P(128, 256); \
	CVT8_P(160, 320); \
	ADDQ $192, R11; \
	ADDQ R8, R12

// Spill one accumulator: max |s|, scale, store at off(R14). The scaling
// adds fracBits to the exponent field with an integer add (VPADDD; a
// VMULPS would take a slot of the FMA pipes): exact for normal s as long
// as s*2^fracBits < 2^128 (no exponent overflow), and a zero or subnormal s becomes a value below
// 2^-64 (fracBits <= 62) that converts to 0 like the exact product. Past
// 2^128 the result is garbage, but then s is far beyond FixedLimit (any C
// is allowed) and the max, taken before scaling, is still exact.
#define SPILL_P(zacc, off) \
	VPANDD Z29, zacc, Z24; \
	VPMAXUD Z24, Z31, Z31; \
	VPADDD Z30, zacc, zacc; \
	VMOVAPS zacc, (off)(R14)

// func fixedKernel8x48AVX512(k, block, tiles int, a, b *float32, c *int64, ldc, set int, scale float32) float32
//
// With set != 0 the first block of every tile stores its integers over C
// instead of adding them (C is not read): AX is 1 from a tile's start
// until its first block is spilled, and 8(SP) says whether the pending
// rows store (1) or add (0).
//
// Frame: 0(SP) counts the tiles left; the scratch is the 64-byte aligned
// 1536 bytes at R14 = (SP+72) &^ 63, within SP+16 .. SP+1608. (This is an
// ABI0 function: it may use R14, the ABI wrapper restores g.) Not NOSPLIT:
// the frame is too large for that, so the prologue checks the stack.
TEXT ·fixedKernel8x48AVX512(SB), 0, $1608-76
	MOVQ block+8(FP), R9
	MOVQ tiles+16(FP), AX
	MOVQ AX, 0(SP)
	MOVQ a+24(FP), SI
	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R8
	SHLQ $3, R8
	LEAQ 72(SP), R14
	ANDQ $~63, R14
	XORQ R13, R13
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z29
	MOVL scale+64(FP), AX
	SUBL $0x3f800000, AX // bits(2^fracBits) - bits(1) = fracBits<<23
	VPBROADCASTD AX, Z30
	VPXORD Z31, Z31, Z31

tileP:
	// Next tile: SI already points to its A panel (the panels are
	// consecutive), B restarts, DI is its top-left element of C.
	MOVQ k+0(FP), CX
	MOVQ b+32(FP), DX
	MOVQ set+56(FP), AX

blockP:
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

	MOVQ R9, R10
	CMPQ CX, R10
	CMOVQLT CX, R10
	SUBQ R10, CX

	MOVQ R10, BX
	SHRQ $2, BX
	ANDQ $3, R10
	TESTQ BX, BX
	JZ   tailP

loop4P:
	TESTQ R13, R13
	JZ    plain4P
	STEP_P(0, 0)
	CMPQ 8(SP), $0
	JNE  store1P
	CONVROW_P
	JMP  conv1P
store1P:
	CONVROW_S
conv1P:
	STEP_P(32, 192)
	STEP_P(64, 384)
	CMPQ 8(SP), $0
	JNE  store2P
	CONVROW_P
	JMP  conv2P
store2P:
	CONVROW_S
conv2P:
	STEP_P(96, 576)
	SUBQ $2, R13
	JMP  next4P

plain4P:
	STEP_P(0, 0)
	STEP_P(32, 192)
	STEP_P(64, 384)
	STEP_P(96, 576)

next4P:
	ADDQ $128, SI
	ADDQ $768, DX
	DECQ BX
	JNZ  loop4P

tailP:
	TESTQ R10, R10
	JZ    flushP

loop1P:
	STEP_P(0, 0)
	ADDQ $32, SI
	ADDQ $192, DX
	DECQ R10
	JNZ  loop1P

flushP:
	// Rows of the previous block not converted yet (short blocks).
	TESTQ R13, R13
	JZ    spillP
	CMPQ 8(SP), $0
	JNE  store3P
	CONVROW_P
	DECQ R13
	JMP  flushP
store3P:
	CONVROW_S
	DECQ R13
	JMP  flushP

spillP:
	SPILL_P(Z0, 0)
	SPILL_P(Z1, 64)
	SPILL_P(Z2, 128)
	SPILL_P(Z3, 192)
	SPILL_P(Z4, 256)
	SPILL_P(Z5, 320)
	SPILL_P(Z6, 384)
	SPILL_P(Z7, 448)
	SPILL_P(Z8, 512)
	SPILL_P(Z9, 576)
	SPILL_P(Z10, 640)
	SPILL_P(Z11, 704)
	SPILL_P(Z12, 768)
	SPILL_P(Z13, 832)
	SPILL_P(Z14, 896)
	SPILL_P(Z15, 960)
	SPILL_P(Z16, 1024)
	SPILL_P(Z17, 1088)
	SPILL_P(Z18, 1152)
	SPILL_P(Z19, 1216)
	SPILL_P(Z20, 1280)
	SPILL_P(Z21, 1344)
	SPILL_P(Z22, 1408)
	SPILL_P(Z23, 1472)
	MOVQ R14, R11
	MOVQ DI, R12
	MOVQ $8, R13
	MOVQ AX, 8(SP) // the rows just spilled store iff they are a tile's first block with set
	XORQ AX, AX
	TESTQ CX, CX
	JNZ   blockP
	LEAQ (DI)(R8*8), DI // 8 rows down
	DECQ 0(SP)
	JNZ  tileP

lastP:
	CMPQ 8(SP), $0
	JNE  store4P
	CONVROW_P
	DECQ R13
	JNZ  lastP
	JMP  maxP
store4P:
	CONVROW_S
	DECQ R13
	JNZ  store4P

maxP:

	VMOVDQA64 Z31, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPMAXUD Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPMAXUD X1, X0, X0
	VMOVSS X0, ret+72(FP)
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

// ---------------------------------------------------------------------------
// func fixedColumnSumsAVX512(rows, cols, block int, a *float32, lda int, c *int64, scale float32) float32
//
// FixedColumnSums for cols a multiple of 16 and rows >= 1: for each block
// of rows and each column, s = +0; s += a[r][j] for r ascending (VADDPS,
// the same single rounding as Go's float32 add); max |s|; c[j] +=
// RNE(s * scale). Columns go 64 at a time (4 independent add chains), then
// 16 at a time. Requires AVX512F and AVX512DQ.
//
// Registers: CX rows left, R9 block, R10 rows of the current block, SI its
// first row, DX the current column group in it, AX the row walk, R11 rows
// left in the walk, BX columns left, DI the current group in c, R8 lda*4,
// Z29 abs mask, Z30 scale, Z31 max bits, Z24..Z27 scratch.

#define CONVC(zacc, yacc, off) \
	VPANDD Z29, zacc, Z24; \
	VPMAXUD Z24, Z31, Z31; \
	VMULPS Z30, zacc, zacc; \
	VEXTRACTF32X8 $1, zacc, Y25; \
	VCVTPS2QQ yacc, Z26; \
	VCVTPS2QQ Y25, Z27; \
	VPADDQ (off)(DI), Z26, Z26; \
	VPADDQ (off+64)(DI), Z27, Z27; \
	VMOVDQU64 Z26, (off)(DI); \
	VMOVDQU64 Z27, (off+64)(DI)

TEXT ·fixedColumnSumsAVX512(SB), NOSPLIT, $0-60
	MOVQ rows+0(FP), CX
	MOVQ block+16(FP), R9
	MOVQ a+24(FP), SI
	MOVQ lda+32(FP), R8
	SHLQ $2, R8
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z29
	VBROADCASTSS scale+48(FP), Z30
	VPXORD Z31, Z31, Z31

blkC:
	MOVQ R9, R10
	CMPQ CX, R10
	CMOVQLT CX, R10
	SUBQ R10, CX
	MOVQ cols+8(FP), BX
	MOVQ c+40(FP), DI
	MOVQ SI, DX

chunk4C:
	CMPQ BX, $64
	JLT  chunk1C
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ DX, AX
	MOVQ R10, R11

row4C:
	VADDPS (AX), Z0, Z0
	VADDPS 64(AX), Z1, Z1
	VADDPS 128(AX), Z2, Z2
	VADDPS 192(AX), Z3, Z3
	ADDQ R8, AX
	DECQ R11
	JNZ  row4C
	CONVC(Z0, Y0, 0)
	CONVC(Z1, Y1, 128)
	CONVC(Z2, Y2, 256)
	CONVC(Z3, Y3, 384)
	ADDQ $256, DX
	ADDQ $512, DI
	SUBQ $64, BX
	JMP  chunk4C

chunk1C:
	TESTQ BX, BX
	JZ    nextC
	VPXORD Z0, Z0, Z0
	MOVQ DX, AX
	MOVQ R10, R11

row1C:
	VADDPS (AX), Z0, Z0
	ADDQ R8, AX
	DECQ R11
	JNZ  row1C
	CONVC(Z0, Y0, 0)
	ADDQ $64, DX
	ADDQ $128, DI
	SUBQ $16, BX
	JMP  chunk1C

nextC:
	IMULQ R8, R10
	ADDQ R10, SI
	TESTQ CX, CX
	JNZ   blkC

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
// fixedKernel6x16AVX2: the fixed-point kernel for AVX2 + FMA (6 x 16 tile,
// 12 ymm accumulators, the float kernel's shape). AVX2 has no float to
// int64 conversion, so at each block's end the sums are widened to
// float64, scaled (exact) and rounded to an integer by adding 1.5*2^52
// (round to nearest even at the units digit), and the integer is the low
// bits minus those of 1.5*2^52. That is exact only for |s*2^fracBits| <
// 2^51: the caller checks the returned max and redoes a tile beyond that.
//
// Registers: Y0..Y11 accumulate (row r uses Y(2r), Y(2r+1)), Y12..Y13 one
// row of B, Y14 broadcasts of A, Y15 max bits; Y12..Y14 are scratch in the
// conversion. The frame holds 2^fracBits as float64 at 0(SP) and the tile
// count at 8(SP).

DATA fixedAbs32<>+0(SB)/8, $0x7fffffff7fffffff
DATA fixedAbs32<>+8(SB)/8, $0x7fffffff7fffffff
DATA fixedAbs32<>+16(SB)/8, $0x7fffffff7fffffff
DATA fixedAbs32<>+24(SB)/8, $0x7fffffff7fffffff
GLOBL fixedAbs32<>(SB), RODATA|NOPTR, $32

DATA fixedMagic64<>+0(SB)/8, $0x4338000000000000
DATA fixedMagic64<>+8(SB)/8, $0x4338000000000000
DATA fixedMagic64<>+16(SB)/8, $0x4338000000000000
DATA fixedMagic64<>+24(SB)/8, $0x4338000000000000
GLOBL fixedMagic64<>(SB), RODATA|NOPTR, $32

#define FMA2_F2(bc, r0, r1) \
	VFMADD231PS Y12, bc, r0; \
	VFMADD231PS Y13, bc, r1

#define STEP_F2(aoff, boff) \
	VMOVUPS (boff)(DX), Y12; \
	VMOVUPS (boff+32)(DX), Y13; \
	VBROADCASTSS (aoff)(SI), Y14; \
	FMA2_F2(Y14, Y0, Y1); \
	VBROADCASTSS (aoff+4)(SI), Y14; \
	FMA2_F2(Y14, Y2, Y3); \
	VBROADCASTSS (aoff+8)(SI), Y14; \
	FMA2_F2(Y14, Y4, Y5); \
	VBROADCASTSS (aoff+12)(SI), Y14; \
	FMA2_F2(Y14, Y6, Y7); \
	VBROADCASTSS (aoff+16)(SI), Y14; \
	FMA2_F2(Y14, Y8, Y9); \
	VBROADCASTSS (aoff+20)(SI), Y14; \
	FMA2_F2(Y14, Y10, Y11)

// One accumulator (8 sums; yacc/xacc its names) into the 8 int64 at
// off(AX). Y14 = 2^fracBits as float64.
#define CONV1_F2(yacc, xacc, off) \
	VANDPS fixedAbs32<>(SB), yacc, Y12; \
	VPMAXUD Y12, Y15, Y15; \
	VEXTRACTF128 $1, yacc, X13; \
	VCVTPS2PD xacc, yacc; \
	VCVTPS2PD X13, Y13; \
	VMULPD Y14, yacc, yacc; \
	VMULPD Y14, Y13, Y13; \
	VADDPD fixedMagic64<>(SB), yacc, yacc; \
	VADDPD fixedMagic64<>(SB), Y13, Y13; \
	VPSUBQ fixedMagic64<>(SB), yacc, yacc; \
	VPSUBQ fixedMagic64<>(SB), Y13, Y13; \
	VPADDQ (off)(AX), yacc, yacc; \
	VPADDQ (off+32)(AX), Y13, Y13; \
	VMOVDQU yacc, (off)(AX); \
	VMOVDQU Y13, (off+32)(AX)

#define CONVROW_F2(y0, x0, y1, x1) \
	CONV1_F2(y0, x0, 0); \
	CONV1_F2(y1, x1, 64); \
	ADDQ R8, AX

// func fixedKernel6x16AVX2(k, block, tiles int, a, b *float32, c *int64, ldc int, scale float32) float32
TEXT ·fixedKernel6x16AVX2(SB), NOSPLIT, $16-68
	MOVQ block+8(FP), R9
	MOVQ tiles+16(FP), AX
	MOVQ AX, 8(SP)
	MOVQ a+24(FP), SI
	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R8
	SHLQ $3, R8
	MOVSS scale+56(FP), X0
	CVTSS2SD X0, X0
	MOVSD X0, 0(SP)
	VPXOR Y15, Y15, Y15

tileA:
	MOVQ k+0(FP), CX
	MOVQ b+32(FP), DX

blockA:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	MOVQ R9, R10
	CMPQ CX, R10
	CMOVQLT CX, R10
	SUBQ R10, CX

	MOVQ R10, BX
	SHRQ $2, BX
	ANDQ $3, R10
	TESTQ BX, BX
	JZ   tailA

loop4A:
	STEP_F2(0, 0)
	STEP_F2(24, 64)
	STEP_F2(48, 128)
	STEP_F2(72, 192)
	ADDQ $96, SI
	ADDQ $256, DX
	DECQ BX
	JNZ  loop4A

tailA:
	TESTQ R10, R10
	JZ    convA

loop1A:
	STEP_F2(0, 0)
	ADDQ $24, SI
	ADDQ $64, DX
	DECQ R10
	JNZ  loop1A

convA:
	VBROADCASTSD 0(SP), Y14
	MOVQ DI, AX
	CONVROW_F2(Y0, X0, Y1, X1)
	CONVROW_F2(Y2, X2, Y3, X3)
	CONVROW_F2(Y4, X4, Y5, X5)
	CONVROW_F2(Y6, X6, Y7, X7)
	CONVROW_F2(Y8, X8, Y9, X9)
	CONVROW_F2(Y10, X10, Y11, X11)
	TESTQ CX, CX
	JNZ   blockA
	MOVQ AX, DI // 6 rows down: the next tile
	DECQ 8(SP)
	JNZ  tileA

	VEXTRACTI128 $1, Y15, X1
	VPMAXUD X1, X15, X0
	VPSHUFD $0x4e, X0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPMAXUD X1, X0, X0
	VMOVSS X0, ret+64(FP)
	VZEROUPPER
	RET
