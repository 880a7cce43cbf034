//go:build amd64

#include "textflag.h"

// Micro-kernels for the packed GEMM driver in gemm.go.
//
// Every kernel computes, for one MR x NR tile,
//
//	C[r][c] = alpha * sum_p A[p][r]*B[p][c] + beta*C[r][c]    (beta == 0: C is not read)
//
// where A is a packed micro-panel (kc groups of MR floats: the MR rows of one
// column of op(A)) and B is a packed micro-panel (kc groups of NR floats: one
// row of op(B)). C is row-major with a row stride of ldc elements. Packing
// pads partial panels with zeros, so the kernels always run full tiles; the
// Go driver handles partial tiles through a scratch tile.
//
// Go assembler operand order is reversed from Intel's:
// VFMADD231PS b, a, acc means acc += a*b.

// ---------------------------------------------------------------------------
// AVX-512: 8 x 48 tile. Z0..Z23 accumulate (row r uses Z(3r)..Z(3r+2)),
// Z24..Z26 hold one row of B, Z27..Z30 take broadcasts of A.

#define FMA3_512(bc, r0, r1, r2) \
	VFMADD231PS Z24, bc, r0; \
	VFMADD231PS Z25, bc, r1; \
	VFMADD231PS Z26, bc, r2

#define STEP_8x48(aoff, boff) \
	VMOVUPS (boff)(DX), Z24; \
	VMOVUPS (boff+64)(DX), Z25; \
	VMOVUPS (boff+128)(DX), Z26; \
	VBROADCASTSS (aoff)(SI), Z27; \
	VBROADCASTSS (aoff+4)(SI), Z28; \
	FMA3_512(Z27, Z0, Z1, Z2); \
	VBROADCASTSS (aoff+8)(SI), Z29; \
	FMA3_512(Z28, Z3, Z4, Z5); \
	VBROADCASTSS (aoff+12)(SI), Z30; \
	FMA3_512(Z29, Z6, Z7, Z8); \
	VBROADCASTSS (aoff+16)(SI), Z27; \
	FMA3_512(Z30, Z9, Z10, Z11); \
	VBROADCASTSS (aoff+20)(SI), Z28; \
	FMA3_512(Z27, Z12, Z13, Z14); \
	VBROADCASTSS (aoff+24)(SI), Z29; \
	FMA3_512(Z28, Z15, Z16, Z17); \
	VBROADCASTSS (aoff+28)(SI), Z30; \
	FMA3_512(Z29, Z18, Z19, Z20); \
	FMA3_512(Z30, Z21, Z22, Z23)

// Scale one row of accumulators by alpha (Z31) and store it.
#define STORE_ROW_512(r0, r1, r2) \
	VMULPS Z31, r0, r0; \
	VMULPS Z31, r1, r1; \
	VMULPS Z31, r2, r2; \
	VMOVUPS r0, (DI); \
	VMOVUPS r1, 64(DI); \
	VMOVUPS r2, 128(DI); \
	ADDQ R8, DI

// Scale by alpha (Z31), add beta (Z30) times C, store.
#define UPDATE_ROW_512(r0, r1, r2) \
	VMULPS Z31, r0, r0; \
	VMULPS Z31, r1, r1; \
	VMULPS Z31, r2, r2; \
	VFMADD231PS (DI), Z30, r0; \
	VFMADD231PS 64(DI), Z30, r1; \
	VFMADD231PS 128(DI), Z30, r2; \
	VMOVUPS r0, (DI); \
	VMOVUPS r1, 64(DI); \
	VMOVUPS r2, 128(DI); \
	ADDQ R8, DI

#define PREFETCH_ROW_192 \
	PREFETCHT0 (AX); \
	PREFETCHT0 64(AX); \
	PREFETCHT0 128(AX); \
	PREFETCHT0 188(AX); \
	ADDQ R8, AX

// func kernel8x48AVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32)
TEXT ·kernel8x48AVX512(SB), NOSPLIT, $0-48
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	// Bring the C tile towards L1 while the loop runs.
	MOVQ DI, AX
	PREFETCH_ROW_192
	PREFETCH_ROW_192
	PREFETCH_ROW_192
	PREFETCH_ROW_192
	PREFETCH_ROW_192
	PREFETCH_ROW_192
	PREFETCH_ROW_192
	PREFETCH_ROW_192

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

	MOVQ CX, BX
	SHRQ $2, BX
	ANDQ $3, CX
	TESTQ BX, BX
	JZ   tail512

loop4_512:
	STEP_8x48(0, 0)
	STEP_8x48(32, 192)
	STEP_8x48(64, 384)
	STEP_8x48(96, 576)
	ADDQ $128, SI
	ADDQ $768, DX
	DECQ BX
	JNZ  loop4_512

tail512:
	TESTQ CX, CX
	JZ    done512

loop1_512:
	STEP_8x48(0, 0)
	ADDQ $32, SI
	ADDQ $192, DX
	DECQ CX
	JNZ  loop1_512

done512:
	VBROADCASTSS alpha+40(FP), Z31
	MOVL beta+44(FP), AX
	ANDL $0x7fffffff, AX
	JZ   store512

	VBROADCASTSS beta+44(FP), Z30
	UPDATE_ROW_512(Z0, Z1, Z2)
	UPDATE_ROW_512(Z3, Z4, Z5)
	UPDATE_ROW_512(Z6, Z7, Z8)
	UPDATE_ROW_512(Z9, Z10, Z11)
	UPDATE_ROW_512(Z12, Z13, Z14)
	UPDATE_ROW_512(Z15, Z16, Z17)
	UPDATE_ROW_512(Z18, Z19, Z20)
	UPDATE_ROW_512(Z21, Z22, Z23)
	VZEROUPPER
	RET

store512:
	STORE_ROW_512(Z0, Z1, Z2)
	STORE_ROW_512(Z3, Z4, Z5)
	STORE_ROW_512(Z6, Z7, Z8)
	STORE_ROW_512(Z9, Z10, Z11)
	STORE_ROW_512(Z12, Z13, Z14)
	STORE_ROW_512(Z15, Z16, Z17)
	STORE_ROW_512(Z18, Z19, Z20)
	STORE_ROW_512(Z21, Z22, Z23)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// AVX2 + FMA: 6 x 16 tile (the BLIS Haswell shape). Y0..Y11 accumulate
// (row r uses Y(2r), Y(2r+1)), Y12..Y13 hold one row of B, Y14..Y15 take
// broadcasts of A.

#define FMA2_256(bc, r0, r1) \
	VFMADD231PS Y12, bc, r0; \
	VFMADD231PS Y13, bc, r1

#define STEP_6x16(aoff, boff) \
	VMOVUPS (boff)(DX), Y12; \
	VMOVUPS (boff+32)(DX), Y13; \
	VBROADCASTSS (aoff)(SI), Y14; \
	VBROADCASTSS (aoff+4)(SI), Y15; \
	FMA2_256(Y14, Y0, Y1); \
	VBROADCASTSS (aoff+8)(SI), Y14; \
	FMA2_256(Y15, Y2, Y3); \
	VBROADCASTSS (aoff+12)(SI), Y15; \
	FMA2_256(Y14, Y4, Y5); \
	VBROADCASTSS (aoff+16)(SI), Y14; \
	FMA2_256(Y15, Y6, Y7); \
	VBROADCASTSS (aoff+20)(SI), Y15; \
	FMA2_256(Y14, Y8, Y9); \
	FMA2_256(Y15, Y10, Y11)

#define STORE_ROW_256(r0, r1) \
	VMULPS Y15, r0, r0; \
	VMULPS Y15, r1, r1; \
	VMOVUPS r0, (DI); \
	VMOVUPS r1, 32(DI); \
	ADDQ R8, DI

#define UPDATE_ROW_256(r0, r1) \
	VMULPS Y15, r0, r0; \
	VMULPS Y15, r1, r1; \
	VFMADD231PS (DI), Y14, r0; \
	VFMADD231PS 32(DI), Y14, r1; \
	VMOVUPS r0, (DI); \
	VMOVUPS r1, 32(DI); \
	ADDQ R8, DI

#define PREFETCH_ROW_64 \
	PREFETCHT0 (AX); \
	PREFETCHT0 60(AX); \
	ADDQ R8, AX

// func kernel6x16AVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32)
TEXT ·kernel6x16AVX2(SB), NOSPLIT, $0-48
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	MOVQ DI, AX
	PREFETCH_ROW_64
	PREFETCH_ROW_64
	PREFETCH_ROW_64
	PREFETCH_ROW_64
	PREFETCH_ROW_64
	PREFETCH_ROW_64

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

	MOVQ CX, BX
	SHRQ $2, BX
	ANDQ $3, CX
	TESTQ BX, BX
	JZ   tail256

loop4_256:
	STEP_6x16(0, 0)
	STEP_6x16(24, 64)
	STEP_6x16(48, 128)
	STEP_6x16(72, 192)
	ADDQ $96, SI
	ADDQ $256, DX
	DECQ BX
	JNZ  loop4_256

tail256:
	TESTQ CX, CX
	JZ    done256

loop1_256:
	STEP_6x16(0, 0)
	ADDQ $24, SI
	ADDQ $64, DX
	DECQ CX
	JNZ  loop1_256

done256:
	VBROADCASTSS alpha+40(FP), Y15
	MOVL beta+44(FP), AX
	ANDL $0x7fffffff, AX
	JZ   store256

	VBROADCASTSS beta+44(FP), Y14
	UPDATE_ROW_256(Y0, Y1)
	UPDATE_ROW_256(Y2, Y3)
	UPDATE_ROW_256(Y4, Y5)
	UPDATE_ROW_256(Y6, Y7)
	UPDATE_ROW_256(Y8, Y9)
	UPDATE_ROW_256(Y10, Y11)
	VZEROUPPER
	RET

store256:
	STORE_ROW_256(Y0, Y1)
	STORE_ROW_256(Y2, Y3)
	STORE_ROW_256(Y4, Y5)
	STORE_ROW_256(Y6, Y7)
	STORE_ROW_256(Y8, Y9)
	STORE_ROW_256(Y10, Y11)
	VZEROUPPER
	RET
