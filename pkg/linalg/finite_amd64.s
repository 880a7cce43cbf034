#include "textflag.h"

// func nonFiniteAVX2(x *float32, n int) bool
// Reports whether any of the n (a multiple of 32) values has an all-ones
// exponent (NaN or an infinity), eight lanes at a time without branches.
TEXT ·nonFiniteAVX2(SB), NOSPLIT, $0-17
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0x7f800000, AX
	MOVQ AX, X0
	VPBROADCASTD X0, Y0
	VPXOR Y1, Y1, Y1

loop:
	CMPQ CX, $32
	JL   done
	VPAND (SI), Y0, Y2
	VPAND 32(SI), Y0, Y3
	VPAND 64(SI), Y0, Y4
	VPAND 96(SI), Y0, Y5
	VPCMPEQD Y0, Y2, Y2
	VPCMPEQD Y0, Y3, Y3
	VPCMPEQD Y0, Y4, Y4
	VPCMPEQD Y0, Y5, Y5
	VPOR Y2, Y1, Y1
	VPOR Y3, Y1, Y1
	VPOR Y4, Y1, Y1
	VPOR Y5, Y1, Y1
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  loop

done:
	VPTEST Y1, Y1
	SETNE ret+16(FP)
	VZEROUPPER
	RET
