package jobdefaults

import (
	"encoding/json"
	"os"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/webhook/config"
)

// seed reads a testdata seed as the webhook receives it: decoded, and defaulted by the API server.
func seed[T *batchv1.Job | *batchv1.CronJob](b *testing.B, name string) T {
	b.Helper()
	in, err := os.ReadFile("testdata/" + name)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := yaml.YAMLToJSON(in)
	if err != nil {
		b.Fatal(err)
	}
	obj := fresh[T]()
	if err := json.Unmarshal(raw, obj); err != nil {
		b.Fatal(err)
	}
	return asServed(obj)
}

// BenchmarkDefaultJob measures one webhook request's work in this package on the seed Job: plan and patch.
func BenchmarkDefaultJob(b *testing.B) {
	j := seed[*batchv1.Job](b, "job.yaml")
	d := New(config.Default())
	b.ReportAllocs()
	for b.Loop() {
		plan, err := d.DefaultJob(j)
		if err != nil || len(plan.Patch("")) == 0 {
			b.Fatal("no patch", err)
		}
	}
}

// BenchmarkDefaultCronJob is BenchmarkDefaultJob for the seed CronJob.
func BenchmarkDefaultCronJob(b *testing.B) {
	cj := seed[*batchv1.CronJob](b, "cronjob.yaml")
	d := New(config.Default())
	b.ReportAllocs()
	for b.Loop() {
		plan, err := d.DefaultCronJob(cj)
		if err != nil || len(plan.Patch("")) == 0 {
			b.Fatal("no patch", err)
		}
	}
}
