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

// series is one curve of a panel.
type series struct {
	label  string
	values func(EpochRecord) float64
	color  color.Color
	dashed bool
	glyph  draw.GlyphDrawer
}

// PlotLearningCurve draws the learning curves of recs to path: loss (left
// panel) and accuracy (right panel) against epoch, train and test, with a
// title, axis labels, legends and grids. The format follows the extension:
// .png or .svg. Every epoch is marked with a point, so a single epoch still
// shows up; non-finite values (a test set not evaluated) are left out, and a
// curve with no finite value is omitted. The file is written atomically.
func PlotLearningCurve(path, title string, recs []EpochRecord) error {
	if len(recs) == 0 {
		return fmt.Errorf("report: plot %s: no epochs to plot", path)
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

	train := color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff} // blue
	test := color.RGBA{R: 0xd6, G: 0x5f, B: 0x0e, A: 0xff}  // dark orange
	loss, err := panel("loss", "loss", recs, []series{
		{"train", func(r EpochRecord) float64 { return r.TrainLoss }, train, false, draw.CircleGlyph{}},
		{"test", func(r EpochRecord) float64 { return r.TestLoss }, test, true, draw.TriangleGlyph{}},
	})
	if err != nil {
		return fmt.Errorf("report: plot %s: loss: %w", path, err)
	}
	loss.Legend.Top = true // loss falls: the top right is usually empty
	acc, err := panel("accuracy", "accuracy", recs, []series{
		{"train", func(r EpochRecord) float64 { return r.TrainAccuracy }, train, false, draw.CircleGlyph{}},
		{"test", func(r EpochRecord) float64 { return r.TestAccuracy }, test, true, draw.TriangleGlyph{}},
	})
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

// panel builds one plot of the given series against epoch.
func panel(name, ylabel string, recs []EpochRecord, ss []series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = name
	p.Title.TextStyle.Font.Size = 13
	p.X.Label.Text = "epoch"
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
	for _, s := range ss {
		var xys plotter.XYs
		for _, r := range recs {
			v := s.values(r)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(r.Epoch), Y: v})
			ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("series %s: %w", s.label, err)
		}
		line.Color = s.color
		line.Width = vg.Points(1.5)
		if s.dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		points.Color = s.color
		points.Shape = s.glyph
		points.Radius = vg.Points(3)
		if len(xys) > 20 {
			points.Radius = vg.Points(1.5) // keep dense curves legible
		}
		p.Add(line, points)
		p.Legend.Add(s.label, line, points)
		drawn++
	}
	if drawn == 0 {
		return nil, errors.New("no finite values to plot")
	}
	if ymin == ymax {
		// One distinct value (a single epoch, say): give the axis a small
		// range around it rather than gonum's ±1, which would flatten
		// an accuracy near 1 against the top of the panel.
		d := math.Max(math.Abs(ymin)*0.05, 1e-3)
		p.Y.Min, p.Y.Max = ymin-d, ymax+d
	}
	return p, nil
}

// epochTicks labels whole epochs only, at most about ten of them.
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
