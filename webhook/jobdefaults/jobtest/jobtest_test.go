package jobtest_test

import (
	"testing"

	"github.com/tandem-dev/tandem/webhook/jobdefaults"
	"github.com/tandem-dev/tandem/webhook/jobdefaults/jobtest"
)

// TestInTreeDefaultsAgree keeps the defaulter's idea of the API server's defaults and this model's in step.
func TestInTreeDefaultsAgree(t *testing.T) {
	for name, pair := range map[string][2]int32{
		"backoffLimit":               {jobdefaults.InTreeBackoffLimit, jobtest.BackoffLimit},
		"successfulJobsHistoryLimit": {jobdefaults.InTreeSuccessfulJobsHistoryLimit, jobtest.SuccessfulJobsHistoryLimit},
		"failedJobsHistoryLimit":     {jobdefaults.InTreeFailedJobsHistoryLimit, jobtest.FailedJobsHistoryLimit},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s: the defaulter says %d, the API server model %d", name, pair[0], pair[1])
		}
	}
}
