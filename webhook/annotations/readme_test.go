package annotations_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

// TestREADMEDocumentsEveryAnnotation keeps the README's annotation table and All in step.
func TestREADMEDocumentsEveryAnnotation(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(tandem\\.dev/[a-z-]+)` \\|").FindAllSubmatch(readme, -1) {
		rows[string(m[1])] = true
	}
	for _, a := range annotations.All {
		if !rows[a.Key] {
			t.Errorf("README's annotation table has no row for %s", a.Key)
		}
		delete(rows, a.Key)
	}
	for key := range rows {
		t.Errorf("README documents %s, which tandem does not know", key)
	}
}
