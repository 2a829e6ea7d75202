package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"text/tabwriter"
)

// report is everything bench measured, as written to the JSON file.
type report struct {
	Machine  machine         `json:"machine"`
	Settings settings        `json:"settings"`
	Servers  []serverFigures `json:"servers"`
	Results  []result        `json:"results"`
	Targets  []target        `json:"targets"`
}

type machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpuModel"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
}

type settings struct {
	Concurrency     []int   `json:"concurrency"`
	SecondsPerLevel float64 `json:"measuredSecondsPerServerAndConcurrency"`
	Rounds          int     `json:"rounds"`
	WarmupSeconds   float64 `json:"warmupSecondsPerRound"`
	ReviewBytes     int     `json:"reviewBytes"`
	TandemBinary    string  `json:"tandemBinary,omitempty"`
}

type serverFigures struct {
	Name       string  `json:"name"`
	IdleRSSMiB float64 `json:"idleRSSMiB"`
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	// ReadySeconds is the time from process start to /readyz 200, for tandem.
	ReadySeconds float64 `json:"readySeconds,omitempty"`
}

// target is one of the README's performance targets, checked on the figures of this run.
type target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit"`
	Met   bool    `json:"met"`
}

const (
	floorName  = "floor"
	noopName   = "no-op controller-runtime"
	tandemName = "tandem"
)

func newReport(opts options, servers []*server, results []result, reviewBytes int) *report {
	rep := &report{
		Machine: machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), Kernel: kernelRelease(), Go: runtime.Version()},
		Settings: settings{Concurrency: opts.concurrency, SecondsPerLevel: opts.duration.Seconds(), Rounds: opts.rounds,
			WarmupSeconds: opts.warmup.Seconds(), ReviewBytes: reviewBytes, TandemBinary: opts.tandem},
		Results: results,
	}
	for _, s := range servers {
		f := serverFigures{Name: s.name, IdleRSSMiB: mib(s.idleRSS), PeakRSSMiB: mib(s.peakRSS)}
		if s.name == tandemName {
			f.ReadySeconds = s.ready.Seconds()
		}
		rep.Servers = append(rep.Servers, f)
	}

	if r, floor := rep.result(tandemName, 64), rep.result(floorName, 64); r != nil && floor != nil {
		rep.check("throughput at concurrency 64, × floor's (at least)", r.ReqPerSec/floor.ReqPerSec, 0.90, "×", true)
	}
	if r, floor := rep.result(tandemName, 1), rep.result(floorName, 1); r != nil && floor != nil {
		rep.check("p50 latency at concurrency 1, × floor's (at most)", r.P50ms/floor.P50ms, 1.2, "×", false)
		rep.check("p99 latency at concurrency 1, × floor's (at most)", r.P99ms/floor.P99ms, 1.3, "×", false)
	}
	tandem, noop := rep.server(tandemName), rep.server(noopName)
	rep.check("peak RSS under load, × no-op controller-runtime server's (at most)", tandem.PeakRSSMiB/noop.PeakRSSMiB, 1.15, "×", false)
	rep.check("/readyz 200 after process start (at most)", tandem.ReadySeconds, 1, "s", false)
	errors := 0
	for _, r := range results {
		errors += r.Errors
	}
	rep.check("failed requests", float64(errors), 0, "", false)
	return rep
}

func (rep *report) check(name string, value, limit float64, unit string, atLeast bool) {
	met := value <= limit
	if atLeast {
		met = value >= limit
	}
	rep.Targets = append(rep.Targets, target{Name: name, Value: value, Limit: limit, Unit: unit, Met: met})
}

func (rep *report) missed() int {
	n := 0
	for _, t := range rep.Targets {
		if !t.Met {
			n++
		}
	}
	return n
}

func (rep *report) result(server string, concurrency int) *result {
	for i := range rep.Results {
		if r := &rep.Results[i]; r.Server == server && r.Concurrency == concurrency {
			return r
		}
	}
	return nil
}

func (rep *report) server(name string) serverFigures {
	for _, s := range rep.Servers {
		if s.Name == name {
			return s
		}
	}
	return serverFigures{}
}

// print writes the tables: each figure with its ratio to the floor's.
func (rep *report) print(out io.Writer) {
	fmt.Fprintf(out, "\nMachine: %d CPUs, %s, Linux %s, %s\n", rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.Kernel, rep.Machine.Go)
	for _, c := range rep.Settings.Concurrency {
		floor := rep.result(floorName, c)
		fmt.Fprintf(out, "\nConcurrency %d (ratios to the floor's)\n", c)
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(w, "%-24s\treq/s\t\tp50 ms\t\tp90 ms\t\tp99 ms\t\tmax ms\t\tCPU s/1000\t\tbench's CPU s/1000\terrors\t\n", "server")
		for _, r := range rep.Results {
			if r.Concurrency != c {
				continue
			}
			fmt.Fprintf(w, "%-24s\t%.0f\t%s\t%.3f\t%s\t%.3f\t%s\t%.3f\t%s\t%.2f\t%s\t%.3f\t%s\t%.3f\t%d\t\n", r.Server,
				r.ReqPerSec, ratio(r.ReqPerSec, floor.ReqPerSec), r.P50ms, ratio(r.P50ms, floor.P50ms), r.P90ms, ratio(r.P90ms, floor.P90ms),
				r.P99ms, ratio(r.P99ms, floor.P99ms), r.MaxMs, ratio(r.MaxMs, floor.MaxMs), r.CPUPer1000, ratio(r.CPUPer1000, floor.CPUPer1000),
				r.ClientCPUPer1000, r.Errors)
		}
		w.Flush()
	}
	floor, noop := rep.server(floorName), rep.server(noopName)
	fmt.Fprintf(out, "\nMemory\n")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "%-24s\tidle RSS MiB\tpeak RSS MiB\t× floor\t× no-op\t\n", "server")
	for _, s := range rep.Servers {
		fmt.Fprintf(w, "%-24s\t%.1f\t%.1f\t%s\t%s\t\n", s.Name, s.IdleRSSMiB, s.PeakRSSMiB, ratio(s.PeakRSSMiB, floor.PeakRSSMiB), ratio(s.PeakRSSMiB, noop.PeakRSSMiB))
	}
	w.Flush()
	fmt.Fprintf(out, "\ntandem answered /readyz 200 %.0f ms after its process started.\n", rep.server(tandemName).ReadySeconds*1000)
	fmt.Fprintf(out, "\nTargets\n")
	for _, t := range rep.Targets {
		verdict := "met   "
		if !t.Met {
			verdict = "MISSED"
		}
		fmt.Fprintf(out, "  %s  %-70s %.2f%s (limit %.2f%s)\n", verdict, t.Name, t.Value, t.Unit, t.Limit, t.Unit)
	}
	for _, r := range rep.Results {
		if r.FirstError != "" {
			fmt.Fprintf(out, "  %s at concurrency %d: %d failed, the first with: %s\n", r.Server, r.Concurrency, r.Errors, r.FirstError)
		}
	}
}

func (rep *report) write(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func ratio(v, base float64) string {
	if base == 0 {
		return ""
	}
	return fmt.Sprintf("(%.2f×)", v/base)
}

func mib(bytes uint64) float64 { return float64(bytes) / (1 << 20) }
