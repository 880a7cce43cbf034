//go:build amd64

#include "textflag.h"

// Constants, broadcast into registers once per call:
//   Y10 = 1 (per dword)            Y11 = 0x7fff
//   Y12 = 0x7fffffff (abs mask)    Y13 = 0x7f800000 (infinity)
//   Y14 = 0x00400000 (quiet bit)   Y15 = 0xffff0000
#define CONSTS \
	MOVL $1, AX; VMOVD AX, X10; VPBROADCASTD X10, Y10; \
	MOVL $0x7fff, AX; VMOVD AX, X11; VPBROADCASTD X11, Y11; \
	MOVL $0x7fffffff, AX; VMOVD AX, X12; VPBROADCASTD X12, Y12; \
	MOVL $0x7f800000, AX; VMOVD AX, X13; VPBROADCASTD X13, Y13; \
	MOVL $0x00400000, AX; VMOVD AX, X14; VPBROADCASTD X14, Y14; \
	MOVL $0xffff0000, AX; VMOVD AX, X15; VPBROADCASTD X15, Y15

// ROUND(in, out, t1, t2): out = the bfloat16 of each float32 lane of in,
// kept in the upper 16 bits of a dword with the lower 16 bits zero (the
// rounded float32): round to nearest even; NaNs become quiet NaNs with
// their upper bits. Same result as bf16Round, lane by lane.
#define ROUND(in, out, t1, t2) \
	VPSRLD $16, in, t1; \
	VPAND  Y10, t1, t1; \
	VPADDD Y11, t1, t1; \
	VPADDD in, t1, out; \
	VPAND  Y15, out, out; \
	VPAND  Y12, in, t1; \
	VPCMPGTD Y13, t1, t1; \
	VPAND  Y15, in, t2; \
	VPOR   Y14, t2, t2; \
	VPBLENDVB t1, t2, out, out

// func encodeBF16AVX2(dst *byte, src, res *float32, n int, own bool)
//
// For i < n (a multiple of 16): dst[2i:2i+2] = bfloat16 of src[i]
// (little-endian); if res != nil, res[i] = src[i] - rounded; if own,
// src[i] = rounded.
TEXT ·encodeBF16AVX2(SB), NOSPLIT, $0-33
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ res+16(FP), DX
	MOVQ n+24(FP), CX
	MOVBQZX own+32(FP), BX
	CONSTS

loop:
	CMPQ CX, $16
	JLT  done
	VMOVDQU 0(SI), Y0
	VMOVDQU 32(SI), Y1
	ROUND(Y0, Y2, Y4, Y5)
	ROUND(Y1, Y3, Y6, Y7)
	TESTQ DX, DX
	JZ    nores
	VSUBPS Y2, Y0, Y4
	VSUBPS Y3, Y1, Y5
	VMOVUPS Y4, 0(DX)
	VMOVUPS Y5, 32(DX)
	ADDQ $64, DX

nores:
	TESTQ BX, BX
	JZ    noown
	VMOVDQU Y2, 0(SI)
	VMOVDQU Y3, 32(SI)

noown:
	VPSRLD $16, Y2, Y2
	VPSRLD $16, Y3, Y3
	VPACKUSDW Y3, Y2, Y2
	VPERMQ $0xd8, Y2, Y2
	VMOVDQU Y2, 0(DI)
	ADDQ $64, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JMP  loop

done:
	VZEROUPPER
	RET

// func addBF16AVX2(dst *float32, src *byte, n int)
//
// dst[i] += the bfloat16 at src[2i:2i+2], for i < n (a multiple of 8).
TEXT ·addBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

addloop:
	CMPQ CX, $8
	JLT  adddone
	VPMOVZXWD 0(SI), Y0
	VPSLLD  $16, Y0, Y0
	VADDPS  0(DI), Y0, Y0
	VMOVUPS Y0, 0(DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  addloop

adddone:
	VZEROUPPER
	RET

// func copyBF16AVX2(dst *float32, src *byte, n int)
//
// dst[i] = the bfloat16 at src[2i:2i+2], widened, for i < n (a multiple of 8).
TEXT ·copyBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

cploop:
	CMPQ CX, $8
	JLT  cpdone
	VPMOVZXWD 0(SI), Y0
	VPSLLD  $16, Y0, Y0
	VMOVUPS Y0, 0(DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  cploop

cpdone:
	VZEROUPPER
	RET
