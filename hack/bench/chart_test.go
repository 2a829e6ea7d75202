package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestDrawChartWritesAPanelPerConcurrency draws a report of two concurrency levels and checks that the PNG
// decodes and holds one panel per level, side by side, each with bars of every percentile.
func TestDrawChartWritesAPanelPerConcurrency(t *testing.T) {
	rep := &report{Machine: machine{CPUs: 2}, Settings: settings{Concurrency: []int{1, 64}, ReviewBytes: 5000}}
	for _, c := range rep.Settings.Concurrency {
		for i, s := range []string{floorName, noopName, tandemName} {
			f := float64(i + 1)
			rep.Results = append(rep.Results, result{Server: s, Concurrency: c, ReqPerSec: 1000 / f,
				P50ms: 0.4 * f * float64(c), P90ms: 0.7 * f * float64(c), P99ms: 1.5 * f * float64(c)})
		}
	}
	path := filepath.Join(t.TempDir(), "latency.png")
	if err := drawChart(path, rep); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("CHART_OUT"); dir != "" { // to look at it: CHART_OUT=/tmp go test ./hack/bench/
		b, _ := os.ReadFile(path)
		_ = os.WriteFile(filepath.Join(dir, "latency.png"), b, 0o644)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 2*b.Dy() || b.Dy() < 200 {
		t.Errorf("chart is %dx%d pixels, want two panels side by side", b.Dx(), b.Dy())
	}
	// Each percentile's bars are drawn in its colour, in both halves of the chart (one panel each).
	for _, pc := range percentiles {
		for half := range 2 {
			if !hasColor(img, b.Min.X+half*b.Dx()/2, b.Min.X+(half+1)*b.Dx()/2, pc.color) {
				t.Errorf("no %s bar in panel %d", pc.name, half+1)
			}
		}
	}
}

// hasColor reports whether a pixel of img between the columns x0 and x1 is c.
func hasColor(img image.Image, x0, x1 int, c color.RGBA) bool {
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := x0; x < x1; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(bl>>8) == c.B {
				return true
			}
		}
	}
	return false
}
