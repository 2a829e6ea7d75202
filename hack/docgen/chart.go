package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// chartDir is the chart whose values table helm-docs renders.
const chartDir = "charts/tandem"

// renderValues is the chart README's values table, rendered by helm-docs from the "# --" comments of the chart's
// values.yaml, in the file's order, through values.gotmpl (kept here, not in the chart, so helm package leaves
// it out).
func renderValues(root string) (string, error) {
	bin, err := helmDocs(root)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin,
		"--chart-search-root", filepath.Join(root, chartDir),
		"--template-files", filepath.Join(root, "hack/docgen/values.gotmpl"),
		"--sort-values-order", "file",
		"--log-level", "warning",
		"--dry-run")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", bin, err, stderr.String())
	}
	table := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(table, "| Key |") {
		return "", fmt.Errorf("%s printed no values table:\n%s%s", bin, stdout.String(), stderr.String())
	}
	return table + "\n", nil
}

// helmDocs is HELM_DOCS, or the pinned helm-docs hack/tools.sh builds.
func helmDocs(root string) (string, error) {
	if bin := os.Getenv("HELM_DOCS"); bin != "" {
		return bin, nil
	}
	cmd := exec.Command(filepath.Join(root, "hack/tools.sh"), "helm-docs")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/tools.sh helm-docs: %w (or set HELM_DOCS to a helm-docs binary)", err)
	}
	return strings.TrimSpace(string(out)), nil
}
