// Command docgen writes the sections of tandem's Markdown that are copies of code: the README's annotation
// table (from annotations.All), its configuration reference and its Job and CronJob defaults (from the doc
// comments of the types in webhook/config/config.go and the built-in values of default.yaml), and the values
// table of the chart's README (helm-docs over the "# --" comments of charts/tandem/values.yaml). Each section sits
// between a "<!-- BEGIN AUTO-GENERATED name ... -->" line and a "<!-- END AUTO-GENERATED name -->" line; the
// text around them is written by hand.
//
//	go run ./hack/docgen          # rewrite the sections (make docs)
//	go run ./hack/docgen -check   # exit 1, saying what differs and what to run, when a section is stale (make lint)
//
// helm-docs is HELM_DOCS when set, otherwise the pinned one from hack/tools.sh helm-docs (built from the Go
// module proxy the first time). Run it from anywhere inside the repository.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// module is the module path docgen looks for, walking up from the working directory, to find the repository.
const module = "github.com/tandem-dev/tandem"

// regenerate is what a reader of a stale section is told to run.
const regenerate = "make docs (go run ./hack/docgen)"

// A section is one generated part of a Markdown file.
type section struct {
	file   string // relative to the repository's root
	name   string // in its markers
	source string // what to edit instead, named in the begin marker and in -check's message
	render func(root string) (string, error)
}

var sections = []section{
	{"README.md", "annotations", "webhook/annotations/annotations.go", renderAnnotations},
	{"README.md", "configuration", "webhook/config/config.go", renderConfiguration},
	{"README.md", "job-defaults", "webhook/config/config.go and default.yaml", renderJobDefaults},
	{"charts/tandem/README.md", "values", "charts/tandem/values.yaml", renderValues},
}

func main() {
	check := flag.Bool("check", false, "change nothing; exit 1 when a committed section differs from what its source makes")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./hack/docgen [-check]\n\n"+
			"Rewrites the AUTO-GENERATED sections of README.md and charts/tandem/README.md from their sources.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	root, err := repoRoot()
	if err != nil {
		fail(err)
	}
	stale, err := run(root, sections, *check, os.Stdout)
	if err != nil {
		fail(err)
	}
	if stale {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "docgen: %v\n", err)
	os.Exit(2)
}

// run renders every section into its file. With check it writes nothing, reports each stale section to out and
// returns true when there was one.
func run(root string, secs []section, check bool, out io.Writer) (stale bool, err error) {
	files := map[string][]byte{}
	var order []string
	for _, s := range secs {
		text, ok := files[s.file]
		if !ok {
			if text, err = os.ReadFile(filepath.Join(root, s.file)); err != nil {
				return false, err
			}
			order = append(order, s.file)
		}
		body, err := s.render(root)
		if err != nil {
			return false, fmt.Errorf("section %q of %s: %w", s.name, s.file, err)
		}
		updated, old, err := replaceSection(text, s, body)
		if err != nil {
			return false, fmt.Errorf("%s: %w", s.file, err)
		}
		if check && !bytes.Equal(updated, text) {
			stale = true
			fmt.Fprintf(out, "%s: the generated section %q differs from what %s makes; run %s and commit the result:\n",
				s.file, s.name, s.source, regenerate)
			printDiff(out, s.file, old, sectionText(s, body))
		}
		files[s.file] = updated
	}
	if check {
		return stale, nil
	}
	for _, f := range order {
		path := filepath.Join(root, f)
		current, err := os.ReadFile(path)
		if err != nil {
			return false, err
		}
		if bytes.Equal(current, files[f]) {
			continue
		}
		if err := os.WriteFile(path, files[f], 0o644); err != nil {
			return false, err
		}
		fmt.Fprintf(out, "docgen: wrote %s\n", f)
	}
	return false, nil
}

func beginMarker(s section) string {
	return fmt.Sprintf("<!-- BEGIN AUTO-GENERATED %s from %s; make docs -->", s.name, s.source)
}

func endMarker(s section) string { return fmt.Sprintf("<!-- END AUTO-GENERATED %s -->", s.name) }

// sectionText is the whole generated section, markers included, without a final newline.
func sectionText(s section, body string) string {
	return beginMarker(s) + "\n\n" + strings.TrimRight(body, "\n") + "\n\n" + endMarker(s)
}

// replaceSection puts body between the markers of s in text, and returns the new text and the section it
// replaced (markers included).
func replaceSection(text []byte, s section, body string) (updated []byte, old string, err error) {
	lines := strings.SplitAfter(string(text), "\n")
	begin, end := -1, -1
	for i, l := range lines {
		l = strings.TrimSpace(l)
		switch {
		case l == "<!-- BEGIN AUTO-GENERATED "+s.name+" -->" || strings.HasPrefix(l, "<!-- BEGIN AUTO-GENERATED "+s.name+" "):
			if begin >= 0 {
				return nil, "", fmt.Errorf("two BEGIN AUTO-GENERATED %s markers (lines %d and %d)", s.name, begin+1, i+1)
			}
			begin = i
		case l == endMarker(s):
			if end >= 0 {
				return nil, "", fmt.Errorf("two END AUTO-GENERATED %s markers (lines %d and %d)", s.name, end+1, i+1)
			}
			end = i
		}
	}
	switch {
	case begin < 0 || end < 0:
		return nil, "", fmt.Errorf("no section %q: add the lines %q and %q where it goes, then run %s",
			s.name, "<!-- BEGIN AUTO-GENERATED "+s.name+" -->", endMarker(s), regenerate)
	case end < begin:
		return nil, "", fmt.Errorf("the END AUTO-GENERATED %s marker (line %d) comes before its BEGIN (line %d)", s.name, end+1, begin+1)
	}
	old = strings.TrimSuffix(strings.Join(lines[begin:end+1], ""), "\n")
	var b strings.Builder
	b.WriteString(strings.Join(lines[:begin], ""))
	b.WriteString(sectionText(s, body))
	b.WriteString("\n")
	b.WriteString(strings.Join(lines[end+1:], ""))
	return []byte(b.String()), old, nil
}

// repoRoot walks up from the working directory to the directory whose go.mod declares module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			first, _, _ := strings.Cut(string(mod), "\n")
			if strings.TrimSpace(first) == "module "+module {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside tandem's repository (no go.mod of " + module + " above the working directory)")
		}
		dir = parent
	}
}
