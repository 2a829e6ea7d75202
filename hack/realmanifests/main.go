// Command realmanifests runs tandem inject over manifests other projects wrote, as a new user would: every YAML
// and JSON file under the directories given, first as it is (it must come back byte for byte unless it holds a
// Job or CronJob, which tandem defaults), then with tandem.dev/backup added to each pod template's metadata (every
// line of that input must come back, in order, no document may be re-encoded, and injecting the output again must
// change nothing). Files that do not parse, or are refused, as they are are skipped. It prints what it found and
// exits 1 on any failure.
//
//	go run ./hack/realmanifests "$(go env GOMODCACHE)/k8s.io/kubernetes@v1.37.2/test"
package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/offline"
)

var (
	templateLine = regexp.MustCompile(`^(\s*)template:\s*$`)
	metadataLine = regexp.MustCompile(`^(\s*)metadata:\s*$`)
	jobKind      = regexp.MustCompile(`(?m)^kind:\s*(Job|CronJob)\s*$|"kind":\s*"(Job|CronJob)"`)
)

func main() {
	cfg := config.Default()
	var files, skipped, annotated, failures int
	for _, root := range os.Args[1:] {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml") || strings.HasSuffix(path, ".json")) {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			files++
			fail := func(format string, args ...any) {
				failures++
				fmt.Printf("%s: %s\n", path, fmt.Sprintf(format, args...))
			}
			out, _, err := inject(path, src, cfg)
			if err != nil {
				skipped++ // not a manifest as it is (a template with {{placeholders}}, a refused object)
				return nil
			}
			if !bytes.Equal(out, src) && !jobKind.Match(src) {
				fail("changed, though it opts in to nothing")
			}
			in, n := optIn(string(src))
			if n == 0 {
				return nil
			}
			annotated++
			out, warnings, err := inject(path, []byte(in), cfg)
			if err != nil {
				fail("refused: %v", err)
				return nil
			}
			if got := strings.Count(string(out), "tandem.dev/injected: postgres"); got < n {
				// Not a kind tandem handles (extensions/v1beta1, a broken kind): printed, not a failure.
				fmt.Printf("%s: %d of %d opted-in pod templates injected\n", path, got, n)
			}
			if strings.Contains(strings.Join(warnings, "\n"), "re-encoded") {
				fail("re-encoded: %s", strings.Join(warnings, "; "))
			}
			if line, ok := kept(in, string(out)); !ok {
				fail("the input's line %q is not in the output, in order", line)
			}
			if again, _, err := inject(path, out, cfg); err != nil || !bytes.Equal(again, out) {
				fail("injecting the output again changed it (%v)", err)
			}
			return nil
		})
	}
	fmt.Printf("%d files (%d that do not parse or are refused as they are, skipped), %d with pod templates opted in, %d failures\n",
		files, skipped, annotated, failures)
	if failures > 0 {
		os.Exit(1)
	}
}

func inject(name string, src []byte, cfg *config.Config) ([]byte, []string, error) {
	var out bytes.Buffer
	res, err := offline.Inject(name, bytes.NewReader(src), &out, cfg)
	return out.Bytes(), res.Warnings, err
}

// optIn adds block-style tandem annotations under each pod template's metadata that has none, and says how many.
func optIn(src string) (string, int) {
	lines := strings.Split(src, "\n")
	var out []string
	n := 0
	for i := 0; i < len(lines); i++ {
		out = append(out, lines[i])
		if !templateLine.MatchString(lines[i]) || i+1 >= len(lines) {
			continue
		}
		m := metadataLine.FindStringSubmatch(lines[i+1])
		if m == nil {
			continue
		}
		indent := m[1] + "  "
		has := false
		for j := i + 2; j < len(lines) && (strings.HasPrefix(lines[j], indent) || strings.TrimSpace(lines[j]) == ""); j++ {
			has = has || strings.HasPrefix(lines[j], indent+"annotations:")
		}
		out = append(out, lines[i+1])
		i++
		if !has {
			out = append(out, indent+"annotations:", indent+"  tandem.dev/backup: postgres", indent+"  tandem.dev/backup-location: s3://b/p")
			n++
		}
	}
	return strings.Join(out, "\n"), n
}

// kept returns the first line of in that is not in out in in's order.
func kept(in, out string) (string, bool) {
	o := strings.Split(out, "\n")
	j := 0
	for _, line := range strings.Split(in, "\n") {
		for j < len(o) && o[j] != line {
			j++
		}
		if j == len(o) {
			return line, false
		}
		j++
	}
	return "", true
}
