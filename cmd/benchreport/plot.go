package main

import (
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

var (
	baselineColor = color.RGBA{R: 0x9e, G: 0x9e, B: 0x9e, A: 0xff}
	dingqColor    = color.RGBA{R: 0x1f, G: 0x6f, B: 0xd0, A: 0xff}
	p99Color      = color.RGBA{R: 0xe0, G: 0x7b, B: 0x1f, A: 0xff}
)

// writePlot draws the throughput of dingq against its baselines and the
// latency and pace figures that were measured, side by side, into path:
// SVG or PNG by its extension.
func writePlot(path string, r *report) error {
	var plots []*plot.Plot
	if p, err := throughputPlot(r); err != nil {
		return err
	} else if p != nil {
		plots = append(plots, p)
	}
	if p, err := latencyPlot(r); err != nil {
		return err
	} else if p != nil {
		plots = append(plots, p)
	}
	if len(plots) == 0 {
		return fmt.Errorf("nothing to plot: no pipeline, enqueue, fan-out or latency results")
	}
	width, height := vg.Length(len(plots))*4.5*vg.Inch, 4*vg.Inch
	var c interface {
		vg.CanvasSizer
		io.WriterTo
	}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg":
		c = vgsvg.New(width, height)
	case ".png":
		c = vgimg.PngCanvas{Canvas: vgimg.New(width, height)}
	default:
		return fmt.Errorf("-plot %s: want a .svg or .png file, not %q", path, ext)
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8,
		PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, draw.New(c))
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// throughputPlot shows each comparison's baseline as 100% and dingq as its
// share of it, the measured rates written above the bars.
func throughputPlot(r *report) (*plot.Plot, error) {
	var names []string
	var base, dq plotter.Values
	var labels []string
	for _, c := range comparisons {
		d, okD := r.get(c.dingq, c.unit)
		b, okB := r.get(c.baseline, c.unit)
		if !okD || !okB || b == 0 {
			continue
		}
		names = append(names, fmt.Sprintf("%s\n(target %.0f%%)", strings.SplitN(c.what, ":", 2)[0], 100*c.target))
		base = append(base, 100)
		dq = append(dq, 100*d/b)
		labels = append(labels, fmt.Sprintf("%s\n%s", num(b), c.unit), fmt.Sprintf("%s\n%s", num(d), c.unit))
	}
	if len(names) == 0 {
		return nil, nil
	}
	return pairedBars(pairs{
		title: "Throughput: dingq as % of raw asynq", yLabel: "% of baseline", top: 145, names: names,
		a: base, b: dq, aColor: baselineColor, bColor: dingqColor,
		aLegend: "asynq client / no-op handler", bLegend: "dingq", labels: labels, lift: 2,
	})
}

// pairs are the two bars of each group of a plot, side by side.
type pairs struct {
	title, yLabel    string
	top              float64 // the y axis's top
	names            []string
	a, b             plotter.Values
	aColor, bColor   color.Color
	aLegend, bLegend string
	// labels are written above the bars, a's then b's of each group; lift
	// is how far above.
	labels []string
	lift   float64
}

// pairedBars draws pr: two bars per group, labeled.
func pairedBars(pr pairs) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = pr.title
	p.Y.Label.Text = pr.yLabel
	p.Y.Min, p.Y.Max = 0, pr.top
	w := vg.Points(22)
	ab, err := plotter.NewBarChart(pr.a, w)
	if err != nil {
		return nil, err
	}
	ab.Color, ab.LineStyle.Width, ab.Offset = pr.aColor, 0, -w/2
	bb, err := plotter.NewBarChart(pr.b, w)
	if err != nil {
		return nil, err
	}
	bb.Color, bb.LineStyle.Width, bb.Offset = pr.bColor, 0, w/2
	p.Add(ab, bb)
	p.Legend.Add(pr.aLegend, ab)
	p.Legend.Add(pr.bLegend, bb)
	p.Legend.Top = true
	p.NominalX(pr.names...)
	var xys plotter.XYs
	for i := range pr.names {
		xys = append(xys, plotter.XY{X: float64(i) - 0.18, Y: pr.a[i] + pr.lift}, plotter.XY{X: float64(i) + 0.18, Y: pr.b[i] + pr.lift})
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: pr.labels})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XCenter
		l.TextStyle[i].Font.Size = vg.Points(7)
	}
	p.Add(l)
	return p, nil
}

// latencyPlot shows Send → DingTalk: p50 and p99 of BenchmarkLatency, and
// of single messages beside the 1M broadcast when it ran.
func latencyPlot(r *report) (*plot.Plot, error) {
	type row struct {
		name     string
		p50, p99 float64
	}
	var rows []row
	if p50, ok := r.get("BenchmarkLatency", "p50-ms"); ok {
		p99, _ := r.get("BenchmarkLatency", "p99-ms")
		rate, _ := r.get("BenchmarkLatency", "msgs/s")
		rows = append(rows, row{fmt.Sprintf("idle fleet\n%s msgs/s", num(rate)), p50, p99})
	}
	if p50, ok := r.get("BenchmarkScenario/broadcast", "singles-p50-ms"); ok {
		most, _ := r.get("BenchmarkScenario/broadcast", "singles-max-ms")
		rows = append(rows, row{"beside a 1M\nbroadcast (p50, max)", p50, most})
	}
	if len(rows) == 0 {
		return nil, nil
	}
	var v50, v99 plotter.Values
	var names, labels []string
	top := 0.0
	for _, r := range rows {
		names = append(names, r.name)
		v50, v99 = append(v50, r.p50), append(v99, r.p99)
		labels = append(labels, fmt.Sprintf("%.1f", r.p50), fmt.Sprintf("%.1f", r.p99))
		top = max(top, r.p99)
	}
	return pairedBars(pairs{
		title: "Latency: Send → DingTalk", yLabel: "ms", top: top * 1.45, names: names,
		a: v50, b: v99, aColor: dingqColor, bColor: p99Color,
		aLegend: "p50", bLegend: "p99 (max beside the broadcast)", labels: labels, lift: top * 0.02,
	})
}
