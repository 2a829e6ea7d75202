package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestDrawChartWritesAPanelPerConcurrency draws a report of two concurrency levels and checks that the PNG
// decodes and holds one panel per level, side by side.
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
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if cfg.Width < 2*cfg.Height || cfg.Height < 200 {
		t.Errorf("chart is %dx%d pixels, want two panels side by side", cfg.Width, cfg.Height)
	}
}
