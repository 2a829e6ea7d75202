package jobdefaults

import (
	"encoding/json"
	"os"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/webhook/config"

	"github.com/tandem-dev/tandem/webhook/jobdefaults/jobtest"
)

// example reads a golden input as the webhook receives it: decoded, and defaulted by the API server.
func example[T *batchv1.Job | *batchv1.CronJob](b *testing.B, name string) T {
	b.Helper()
	in, err := os.ReadFile("../testdata/golden/" + name)
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
	return jobtest.AsServed(obj)
}

// BenchmarkDefaultJob measures one webhook request's work in this package on the example Job: plan and patch.
func BenchmarkDefaultJob(b *testing.B) {
	j := example[*batchv1.Job](b, "job.yaml")
	d := New(config.Default())
	b.ReportAllocs()
	for b.Loop() {
		plan, err := d.DefaultJob(j)
		if err != nil || len(plan.Patch("")) == 0 {
			b.Fatal("no patch", err)
		}
	}
}

// BenchmarkDefaultCronJob is BenchmarkDefaultJob for the example CronJob.
func BenchmarkDefaultCronJob(b *testing.B) {
	cj := example[*batchv1.CronJob](b, "cronjob.yaml")
	d := New(config.Default())
	b.ReportAllocs()
	for b.Loop() {
		plan, err := d.DefaultCronJob(cj)
		if err != nil || len(plan.Patch("")) == 0 {
			b.Fatal("no patch", err)
		}
	}
}
