package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// percentiles are the bars drawn for each server: the latency below which half, 90% and 99% of admissions
// answered, darkest first.
var percentiles = []struct {
	name  string
	value func(result) float64
	color color.RGBA
}{
	{"p50", func(r result) float64 { return r.P50ms }, color.RGBA{52, 101, 164, 255}},
	{"p90", func(r result) float64 { return r.P90ms }, color.RGBA{114, 159, 207, 255}},
	{"p99", func(r result) float64 { return r.P99ms }, color.RGBA{230, 126, 34, 255}},
}

// drawChart draws, for each concurrency in its own panel and on its own scale, each server's p50, p90 and p99
// latency as grouped bars, with the server's requests per second under its name, and writes it as a PNG.
func drawChart(path string, rep *report) error {
	levels := rep.Settings.Concurrency
	row := make([]*plot.Plot, len(levels))
	for i, c := range levels {
		p, err := latencyPanel(rep, c)
		if err != nil {
			return err
		}
		row[i] = p
	}
	img := vgimg.New(vg.Length(len(levels))*12*vg.Centimeter, 10*vg.Centimeter)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(levels), PadX: 8 * vg.Millimeter, PadLeft: 3 * vg.Millimeter, PadRight: 3 * vg.Millimeter, PadTop: 3 * vg.Millimeter, PadBottom: 3 * vg.Millimeter}
	for j, c := range plot.Align([][]*plot.Plot{row}, tiles, dc)[0] {
		row[j].Draw(c)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// latencyPanel is the plot of one concurrency level: a group of bars per server.
func latencyPanel(rep *report, concurrency int) (*plot.Plot, error) {
	var results []result
	for _, r := range rep.Results {
		if r.Concurrency == concurrency {
			results = append(results, r)
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("concurrency %d", concurrency)
	p.Y.Label.Text = "admission latency, ms"
	p.X.Label.Text = fmt.Sprintf("%d-byte pod review, %d CPUs", rep.Settings.ReviewBytes, rep.Machine.CPUs)
	p.Y.Min = 0
	for _, r := range results {
		p.Y.Max = max(p.Y.Max, 1.3*r.P99ms) // headroom for the legend
	}
	p.Legend.Top = true
	p.Legend.Left = true
	names := make([]string, len(results))
	for i, r := range results {
		names[i] = fmt.Sprintf("%s\n%.0f req/s", r.Server, r.ReqPerSec)
	}
	p.NominalX(names...)
	p.Add(plotter.NewGrid())
	width := vg.Points(16)
	for k, pc := range percentiles {
		values := make(plotter.Values, len(results))
		for i, r := range results {
			values[i] = pc.value(r)
		}
		bars, err := plotter.NewBarChart(values, width)
		if err != nil {
			return nil, err
		}
		bars.Color = pc.color
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(k-len(percentiles)/2) * width
		p.Add(bars)
		p.Legend.Add(pc.name, bars)
	}
	return p, nil
}
