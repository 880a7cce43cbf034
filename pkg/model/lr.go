package model

// StepLR is Step with learning rate lr for this update (a schedule's rate;
// lr <= 0 keeps the configured rate). Like a PyTorch scheduler it sets the
// rate the optimizer uses from now on (Config.LR), so Adam's step size and
// AdamW's decay use it as PyTorch's do.
func (o *Optimizer) StepLR(params, grads []float32, scale float32, lr float64) {
	if lr > 0 {
		o.Config.LR = lr
	}
	o.Step(params, grads, scale)
}
