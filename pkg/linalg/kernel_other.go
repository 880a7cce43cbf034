//go:build !amd64

package linalg

// supportedKernels lists the micro-kernels this CPU can run, fastest first.
// Only the portable Go kernel exists outside amd64.
func supportedKernels() []microKernel {
	return []microKernel{genericKernel}
}
