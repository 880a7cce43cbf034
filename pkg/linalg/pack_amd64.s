//go:build amd64

#include "textflag.h"

// func packRowsTrans8(dst, src *float32, ld, groups, kc8 int)
//
// Transposing pack (see packRows) for full panels of w = 8*groups lanes and
// a depth of 8*kc8: dst[p*w + r] = src[r*ld + p] for r < w, p < 8*kc8.
// Each 8 x 8 block (8 lanes, 8 depth steps) is loaded as eight row
// vectors, transposed in registers (unpack, shuffle, 128-bit permute) and
// stored as eight depth-step vectors. Requires AVX.
//
// Registers: SI source of the current lane group, DI its destination,
// AX/DX the running source/destination pointers, R8 = ld*4, R11 = 3*ld*4,
// R12 = 5*ld*4, R13 = 7*ld*4, R9 = w*4, R10 = 3*w*4, CX depth counter,
// BX group counter.
TEXT ·packRowsTrans8(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ groups+24(FP), BX
	MOVQ BX, R9
	SHLQ $5, R9 // w*4 = groups*8*4
	LEAQ (R8)(R8*2), R11
	LEAQ (R8)(R8*4), R12
	LEAQ (R11)(R8*4), R13
	LEAQ (R9)(R9*2), R10

group:
	MOVQ SI, AX
	MOVQ DI, DX
	MOVQ kc8+32(FP), CX

block:
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R8*1), Y1
	VMOVUPS (AX)(R8*2), Y2
	VMOVUPS (AX)(R11*1), Y3
	VMOVUPS (AX)(R8*4), Y4
	VMOVUPS (AX)(R12*1), Y5
	VMOVUPS (AX)(R11*2), Y6
	VMOVUPS (AX)(R13*1), Y7

	// t0..t7 = interleave row pairs.
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15

	// s0..s7 = 4-row columns within each 128-bit half.
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7

	// o0..o7 = full 8-lane depth steps.
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15

	VMOVUPS Y8, (DX)
	VMOVUPS Y9, (DX)(R9*1)
	VMOVUPS Y10, (DX)(R9*2)
	VMOVUPS Y11, (DX)(R10*1)
	LEAQ (DX)(R9*4), DX
	VMOVUPS Y12, (DX)
	VMOVUPS Y13, (DX)(R9*1)
	VMOVUPS Y14, (DX)(R9*2)
	VMOVUPS Y15, (DX)(R10*1)
	LEAQ (DX)(R9*4), DX

	ADDQ $32, AX
	DECQ CX
	JNZ  block

	LEAQ (SI)(R8*8), SI // next 8 lanes
	ADDQ $32, DI
	DECQ BX
	JNZ  group
	VZEROUPPER
	RET

// func packColsCopy8(dst, src *float32, ld, groups, kc int)
//
// Copying pack (see packCols) for full panels of w = 8*groups lanes:
// dst[p*w + r] = src[p*ld + r] for r < w, p < kc, in 32-byte vectors.
// Requires AVX.
TEXT ·packColsCopy8(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ kc+32(FP), CX

row:
	MOVQ groups+24(FP), BX
	XORQ AX, AX

lane:
	VMOVUPS (SI)(AX*1), Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ $32, AX
	DECQ BX
	JNZ  lane

	ADDQ AX, DI // dst advances by w floats
	ADDQ R8, SI // src advances by ld floats
	DECQ CX
	JNZ  row
	VZEROUPPER
	RET
