// Package model is the backpropagation engine: a multilayer perceptron built
// as a chain of dense blocks x_{n+1} = phi(W_n x_n + b_n) that ends in a loss
// layer, exactly as the lecture frames it.
//
// Every block knows two derivatives:
//
//   - criterion A, d(out)/d(in): Backward turns dL/d(out) into dL/d(in);
//   - criterion B, d(out)/d(params): Backward accumulates dL/dW and dL/db.
//
// The backward pass chains the blocks from the loss back to the input.
//
// # Memory layout
//
// All trainable parameters of a Network live in one contiguous float32
// buffer (Network.Params) and their gradients in a second buffer with the same
// layout (Network.Grads). Dense layer i owns, in order, its weight matrix W_i
// (row-major, shape [out, in]) and, when bias is on, its bias vector b_i
// (shape [out]); the layers hold slices (views) into both buffers. The
// distributed trainer all-reduces Grads as one buffer.
//
// # Sums, not means
//
// ForwardBackward adds the gradient of the SUM of the per-sample losses to
// Grads and returns the loss sum. The caller divides by the number of samples
// (locally, or after an all-reduce of sums across workers) before the
// optimizer step, so that the update is the gradient of the mean loss, as in
// PyTorch, whatever the number of workers.
//
// # Threads
//
// Network.SetThreads(n) makes a network compute on n threads (New starts
// with one): the GEMMs run on a linalg.Pool, which splits output tiles and
// never the K sum, and the elementwise loops (activations and their
// derivatives, bias and bias gradient, and, once Optimizer.SetPool is given
// the network's Pool, the SGD, momentum and Adam updates) are split into
// contiguous ranges when they have at least 32K elements. The loss and its
// sum stay on one thread. Every value is computed by the same operations in
// the same order whatever the thread count, so parameters are bit-identical
// for any n, and replicas with different thread counts stay in step.
//
// # Losses (PyTorch conventions, mean over the batch, no factor 1/2)
//
//   - MSE: sum over outputs of (y_hat - y)^2, averaged over samples. With one
//     output the target is the class index (0 or 1); with K outputs it is the
//     one-hot vector of the class.
//   - BCE: binary cross-entropy on a sigmoid output, fused with the sigmoid and
//     computed from the logit t as max(t,0) - t*y + log(1+exp(-|t|)), whose
//     derivative is sigmoid(t) - y.
//   - CE: softmax cross-entropy, fused with the softmax output: the derivative
//     with respect to the logits is softmax(t) - onehot(y).
//   - Hinge: max(0, 1 - y*o) with y in {-1, +1} (class 0 -> -1, class 1 -> +1)
//     on a single output o.
//
// # Subgradients
//
// ReLU is not differentiable at 0 and hinge is not differentiable where
// y*o = 1. At those points the engine uses the subgradient 0 (ReLU'(0) = 0,
// the derivative of the hinge at the kink is 0), which is what PyTorch does
// for ReLU and for the hinge's max(0, .) clamp, so that results compare.
//
// # Optimizers (PyTorch definitions)
//
//   - SGD: p <- p - lr*g.
//   - Momentum (torch.optim.SGD with momentum mu, dampening 0, no Nesterov):
//     v <- mu*v + g, p <- p - lr*v, with v starting at 0 so that the first
//     step is v = g.
//   - Adam (torch.optim.Adam, no weight decay, no amsgrad): m <- b1 m + (1-b1) g,
//     v <- b2 v + (1-b2) g^2, p <- p - lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
package model
