package report

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot geometry: two panels side by side under a title band.
const (
	plotWidth  = 11 * vg.Inch
	plotHeight = 4.5 * vg.Inch
	plotDPI    = 110 // PNG: 1210 x 495 pixels
)

// curve is one line of a panel: points, style and legend label.
type curve struct {
	label  string
	xys    plotter.XYs
	color  color.Color
	width  vg.Length
	dashed bool
	glyph  draw.GlyphDrawer // nil: a line without points
}

// Colours of the curves.
var (
	trainColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff} // blue
	rawColor   = color.RGBA{R: 0x9e, G: 0xc5, B: 0xe6, A: 0xff} // light blue
	testColor  = color.RGBA{R: 0xd6, G: 0x5f, B: 0x0e, A: 0xff} // dark orange
)

// PlotLearningCurve draws the learning curves to path: loss (left panel)
// and accuracy (right panel) against the step. steps gives the per-step
// training figures of each step's batch, drawn raw (thin, light) and
// smoothed (an exponential moving average); recs gives the per-epoch train
// and test figures, drawn as points at the step that ended each epoch, on
// the same axes. So a one-epoch run shows a real curve. With no steps (a
// run resumed from before steps.csv existed) only the epoch points are
// drawn. The format follows the extension: .png or .svg. Non-finite values
// are left out, and a curve with no finite value is omitted. The file is
// written atomically.
func PlotLearningCurve(path, title string, recs []EpochRecord, steps []StepRecord) error {
	if len(recs) == 0 && len(steps) == 0 {
		return fmt.Errorf("report: plot %s: no epochs or steps to plot", path)
	}
	ext := strings.ToLower(filepath.Ext(path))
	var canvas vg.CanvasWriterTo
	switch ext {
	case ".png":
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))}
	case ".svg":
		canvas = vgsvg.New(plotWidth, plotHeight)
	default:
		return fmt.Errorf("report: plot %s: unsupported extension %q (want .png or .svg)", path, ext)
	}

	loss, err := panel("loss", "loss", curves(steps, recs,
		func(s StepRecord) float64 { return s.TrainLoss },
		func(r EpochRecord) float64 { return r.TrainLoss },
		func(r EpochRecord) float64 { return r.TestLoss }))
	if err != nil {
		return fmt.Errorf("report: plot %s: loss: %w", path, err)
	}
	loss.Legend.Top = true // loss falls: the top right is usually empty
	acc, err := panel("accuracy", "accuracy", curves(steps, recs,
		func(s StepRecord) float64 { return s.TrainAccuracy },
		func(r EpochRecord) float64 { return r.TrainAccuracy },
		func(r EpochRecord) float64 { return r.TestAccuracy }))
	if err != nil {
		return fmt.Errorf("report: plot %s: accuracy: %w", path, err)
	}
	acc.Legend.Top = false // accuracy rises: the bottom right is usually empty

	dc := draw.New(canvas)
	dc.FillPolygon(color.White, []vg.Point{
		{X: 0, Y: 0}, {X: plotWidth, Y: 0}, {X: plotWidth, Y: plotHeight}, {X: 0, Y: plotHeight},
	})
	titleStyle := text.Style{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, 15),
		XAlign:  draw.XCenter,
		YAlign:  draw.YTop,
		Handler: plot.DefaultTextHandler,
	}
	pad := vg.Points(8)
	body := dc
	if title != "" {
		dc.FillText(titleStyle, vg.Point{X: plotWidth / 2, Y: plotHeight - pad}, title)
		body = draw.Crop(dc, 0, 0, 0, -(titleStyle.Height(title) + 2*pad))
	}
	tiles := draw.Tiles{
		Rows: 1, Cols: 2,
		PadX: vg.Points(24), PadLeft: pad, PadRight: pad, PadBottom: pad, PadTop: pad,
	}
	plots := [][]*plot.Plot{{loss, acc}}
	canvases := plot.Align(plots, tiles, body)
	loss.Draw(canvases[0][0])
	acc.Draw(canvases[0][1])

	err = writeFileAtomic(path, func(w io.Writer) error {
		_, err := canvas.WriteTo(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("report: plot: %w", err)
	}
	return nil
}

// curves builds a panel's curves: the per-step figure raw and smoothed,
// and the per-epoch train and test figures.
func curves(steps []StepRecord, recs []EpochRecord, step func(StepRecord) float64, train, test func(EpochRecord) float64) []curve {
	var raw plotter.XYs
	for _, s := range steps {
		if v := step(s); finiteValue(v) {
			raw = append(raw, plotter.XY{X: float64(s.Step), Y: v})
		}
	}
	var tr, te plotter.XYs
	for _, r := range recs {
		if v := train(r); finiteValue(v) {
			tr = append(tr, plotter.XY{X: float64(r.Step), Y: v})
		}
		if v := test(r); finiteValue(v) {
			te = append(te, plotter.XY{X: float64(r.Step), Y: v})
		}
	}
	span := SmoothingSpan(len(raw))
	return []curve{
		{label: "train, per step", xys: raw, color: rawColor, width: vg.Points(0.8)},
		{label: fmt.Sprintf("train, smoothed (EMA %d steps)", span), xys: Smooth(raw, span), color: trainColor, width: vg.Points(2)},
		{label: "train, epoch mean", xys: tr, color: trainColor, width: 0, glyph: draw.CircleGlyph{}},
		{label: "test, epoch end", xys: te, color: testColor, width: vg.Points(1.5), dashed: true, glyph: draw.PyramidGlyph{}},
	}
}

func finiteValue(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// SmoothingSpan is the span of the exponential moving average drawn over n
// per-step points: about a twenty-fifth of the run, at least 5 and at most
// 200 steps (0 when there are too few points to smooth).
func SmoothingSpan(n int) int {
	if n < 10 {
		return 0
	}
	return min(max(n/25, 5), 200)
}

// Smooth returns the exponential moving average of xys with the given span
// (alpha = 2/(span+1)), debiased as Adam does so that the first points are
// not pulled towards zero; nil for span 0.
func Smooth(xys plotter.XYs, span int) plotter.XYs {
	if span <= 0 || len(xys) == 0 {
		return nil
	}
	alpha := 2 / float64(span+1)
	out := make(plotter.XYs, len(xys))
	avg, weight := 0.0, 0.0
	for i, p := range xys {
		avg = (1-alpha)*avg + alpha*p.Y
		weight = (1-alpha)*weight + alpha
		out[i] = plotter.XY{X: p.X, Y: avg / weight}
	}
	return out
}

// panel builds one plot of the given curves against the step.
func panel(name, ylabel string, cs []curve) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = name
	p.Title.TextStyle.Font.Size = 13
	p.X.Label.Text = "step"
	p.Y.Label.Text = ylabel
	p.X.Tick.Marker = plot.TickerFunc(epochTicks)
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{Y: 0xd0}
	grid.Horizontal.Color = color.Gray{Y: 0xd0}
	p.Add(grid)
	p.Legend.Left = false
	p.Legend.Padding = vg.Points(3)

	drawn := 0
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, c := range cs {
		if len(c.xys) == 0 {
			continue
		}
		for _, xy := range c.xys {
			ymin, ymax = math.Min(ymin, xy.Y), math.Max(ymax, xy.Y)
		}
		var thumbs []plot.Thumbnailer
		if c.width > 0 && len(c.xys) > 1 {
			line, err := plotter.NewLine(c.xys)
			if err != nil {
				return nil, fmt.Errorf("series %s: %w", c.label, err)
			}
			line.Color = c.color
			line.Width = c.width
			if c.dashed {
				line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			}
			p.Add(line)
			thumbs = append(thumbs, line)
		}
		if c.glyph != nil || len(c.xys) == 1 {
			points, err := plotter.NewScatter(c.xys)
			if err != nil {
				return nil, fmt.Errorf("series %s: %w", c.label, err)
			}
			points.Color = c.color
			points.Shape = c.glyph
			if c.glyph == nil {
				points.Shape = draw.CircleGlyph{}
			}
			points.Radius = vg.Points(3.5)
			if len(c.xys) <= 3 {
				points.Radius = vg.Points(5) // a lone point must stand out
			} else if len(c.xys) > 20 {
				points.Radius = vg.Points(1.5) // keep dense curves legible
			}
			p.Add(points)
			thumbs = append(thumbs, points)
		}
		p.Legend.Add(c.label, thumbs...)
		drawn++
	}
	if drawn == 0 {
		return nil, errors.New("no finite values to plot")
	}
	// Room on the right for the points of the last epoch, which sit at
	// the last step.
	p.X.Max += math.Max(1, 0.02*(p.X.Max-p.X.Min))
	if ymin == ymax {
		// One distinct value (a single epoch, say): give the axis a small
		// range around it rather than gonum's ±1, which would flatten
		// an accuracy near 1 against the top of the panel.
		d := math.Max(math.Abs(ymin)*0.05, 1e-3)
		p.Y.Min, p.Y.Max = ymin-d, ymax+d
	}
	return p, nil
}

// epochTicks labels whole numbers (steps) only, at most about ten of them.
func epochTicks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	if hi < lo || math.IsInf(lo, 0) || math.IsInf(hi, 0) || math.IsNaN(lo) || math.IsNaN(hi) {
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	step := niceStep(hi - lo)
	lo = math.Ceil(lo/step) * step
	var ticks []plot.Tick
	for v := lo; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
	}
	return ticks
}

// niceStep returns the smallest step of the form {1, 2, 5} × 10^k (k >= 0)
// that divides span into at most ten intervals.
func niceStep(span float64) float64 {
	for mag := 1.0; ; mag *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if span/(m*mag) <= 10 {
				return m * mag
			}
		}
	}
}
