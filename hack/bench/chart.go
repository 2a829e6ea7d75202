package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strings"
)

// Chart geometry, in pixels: one panel per concurrency, each with one bar per server.
const (
	panelWidth  = 300
	plotHeight  = 280
	plotTop     = 70
	axisInset   = 56 // from a panel's left edge to its axis, room for the tick labels
	barWidth    = 56
	barGap      = 22
	chartMargin = 16
)

var (
	white     = color.RGBA{255, 255, 255, 255}
	ink       = color.RGBA{33, 33, 33, 255}
	gridColor = color.RGBA{224, 224, 224, 255}
	// serverColors, in the order of the servers: floor, no-op controller-runtime, tandem.
	serverColors = map[string]color.RGBA{floorName: {117, 117, 117, 255}, noopName: {52, 101, 164, 255}, tandemName: {230, 126, 34, 255}}
	shortNames   = map[string]string{floorName: "FLOOR", noopName: "NO-OP CR", tandemName: "TANDEM"}
)

// drawChart draws the latency of each server at each concurrency as a bar whose dark, middle and light parts
// reach p50, p90 and p99 (p50 and p99 written on it), with each panel on its own scale, and the req/s under each
// bar.
func drawChart(path string, rep *report) error {
	levels := rep.Settings.Concurrency
	width := 2*chartMargin + len(levels)*panelWidth
	height := plotTop + plotHeight + 70
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	drawText(img, chartMargin, 12, 2, "ADMISSION LATENCY, MS", ink)
	drawText(img, chartMargin, 36, 1, "BAR: P50 DARK, P90 MIDDLE, P99 LIGHT. UNDER IT: REQUESTS/S. "+
		fmt.Sprintf("%d-BYTE POD REVIEW, %d CPUS", rep.Settings.ReviewBytes, rep.Machine.CPUs), ink)

	base := plotTop + plotHeight
	for i, c := range levels {
		left := chartMargin + i*panelWidth
		axis := left + axisInset
		var results []result
		top := 0.0
		for _, r := range rep.Results {
			if r.Concurrency == c {
				results = append(results, r)
				top = max(top, r.P99ms)
			}
		}
		scale := niceCeil(top * 1.08)
		drawText(img, axis, plotTop-14, 1, fmt.Sprintf("CONCURRENCY %d", c), ink)
		for k := 0; k <= 4; k++ {
			y := base - k*plotHeight/4
			fill(img, axis, y, left+panelWidth-chartMargin, y+1, gridColor)
			label := tick(scale * float64(k) / 4)
			drawText(img, axis-6-textWidth(label, 1), y-3, 1, label, ink)
		}
		fill(img, axis, plotTop, axis+1, base+1, ink)
		for j, r := range results {
			x := axis + 10 + j*(barWidth+barGap)
			c := serverColors[r.Server]
			for _, part := range []struct {
				ms    float64
				whity float64
			}{{r.P99ms, 0.72}, {r.P90ms, 0.42}, {r.P50ms, 0}} {
				h := int(math.Round(part.ms / scale * plotHeight))
				fill(img, x, base-h, x+barWidth, base, mix(c, white, part.whity))
			}
			value := fmt.Sprintf("%.2f", r.P99ms)
			drawText(img, x+(barWidth-textWidth(value, 1))/2, base-int(r.P99ms/scale*plotHeight)-11, 1, value, ink)
			if h := int(r.P50ms / scale * plotHeight); h >= 12 { // p50 inside its part of the bar, where it fits
				value := fmt.Sprintf("%.2f", r.P50ms)
				drawText(img, x+(barWidth-textWidth(value, 1))/2, base-h+3, 1, value, white)
			}
			name := shortNames[r.Server]
			drawText(img, x+(barWidth-textWidth(name, 1))/2, base+8, 1, name, ink)
			rate := fmt.Sprintf("%.0f/S", r.ReqPerSec)
			drawText(img, x+(barWidth-textWidth(rate, 1))/2, base+20, 1, rate, ink)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// niceCeil rounds v up to 1, 2, 4, 6 or 8 times a power of ten, so that its quarters, the axis ticks, are round.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 6, 8, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

func tick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	case v < 10:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	}
	return fmt.Sprintf("%.0f", v)
}

func fill(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	draw.Draw(img, image.Rect(x0, y0, x1, y1), image.NewUniform(c), image.Point{}, draw.Src)
}

// mix blends c towards w by t (0: c, 1: w).
func mix(c, w color.RGBA, t float64) color.RGBA {
	m := func(a, b uint8) uint8 { return uint8(math.Round(float64(a)*(1-t) + float64(b)*t)) }
	return color.RGBA{m(c.R, w.R), m(c.G, w.G), m(c.B, w.B), 255}
}
