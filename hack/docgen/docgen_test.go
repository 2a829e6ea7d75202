package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommittedSectionsAreCurrent runs the check of make lint over the committed files, so go test ./... fails on
// a stale section too. The chart's values table needs helm-docs: it is checked when HELM_DOCS is set.
func TestCommittedSectionsAreCurrent(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var secs []section
	for _, s := range sections {
		if s.file == "charts/tandem/README.md" && os.Getenv("HELM_DOCS") == "" {
			t.Logf("not checking %s: set HELM_DOCS=$(hack/tools.sh helm-docs) to check it (make lint does)", s.file)
			continue
		}
		secs = append(secs, s)
	}
	var out bytes.Buffer
	stale, err := run(root, secs, true, &out)
	if err != nil {
		t.Fatal(err)
	}
	if stale {
		t.Errorf("stale generated documentation:\n%s", out.String())
	}
}

func TestCheckReportsAHandEditedRow(t *testing.T) {
	dir := t.TempDir()
	s := section{file: "DOC.md", name: "table", source: "the source", render: func(string) (string, error) {
		return "| key | meaning |\n|---|---|\n| `a` | the first |\n| `b` | the second |\n| `c` | the third |\n", nil
	}}
	path := filepath.Join(dir, s.file)
	if err := os.WriteFile(path, []byte("# Title\n\n<!-- BEGIN AUTO-GENERATED table -->\n<!-- END AUTO-GENERATED table -->\n\nAfter.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if stale, err := run(dir, []section{s}, true, &out); err != nil || !stale {
		t.Fatalf("check of an empty section: stale %v, err %v; want stale", stale, err)
	}
	if _, err := run(dir, []section{s}, false, &out); err != nil {
		t.Fatal(err)
	}
	written, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(written), "# Title\n\n<!-- BEGIN AUTO-GENERATED table from the source; make docs -->\n\n| key |") ||
		!strings.HasSuffix(string(written), "| `c` | the third |\n\n<!-- END AUTO-GENERATED table -->\n\nAfter.\n") {
		t.Fatalf("written file:\n%s", written)
	}
	out.Reset()
	if stale, err := run(dir, []section{s}, true, &out); err != nil || stale {
		t.Fatalf("check after writing: stale %v, err %v, output %q", stale, err, out.String())
	}

	edited := strings.Replace(string(written), "the third", "the third, edited by hand", 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if stale, err := run(dir, []section{s}, true, &out); err != nil || !stale {
		t.Fatalf("check after a hand edit: stale %v, err %v", stale, err)
	}
	for _, want := range []string{`DOC.md: the generated section "table" differs from what the source makes; run make docs`,
		" | `b` | the second |\n-| `c` | the third, edited by hand |\n+| `c` | the third |\n \n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check's message lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "the first") {
		t.Errorf("check's message shows unchanged rows beyond one line of context:\n%s", out.String())
	}
	if now, _ := os.ReadFile(path); string(now) != edited {
		t.Error("-check changed the file")
	}
}

func TestReplaceSectionRefusesBrokenMarkers(t *testing.T) {
	s := section{name: "table"}
	for name, text := range map[string]string{
		"no markers":     "text\n",
		"no end":         "<!-- BEGIN AUTO-GENERATED table -->\n",
		"end before":     "<!-- END AUTO-GENERATED table -->\n<!-- BEGIN AUTO-GENERATED table -->\n",
		"two beginnings": "<!-- BEGIN AUTO-GENERATED table -->\n<!-- BEGIN AUTO-GENERATED table -->\n<!-- END AUTO-GENERATED table -->\n",
	} {
		if _, _, err := replaceSection([]byte(text), s, "x\n"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Another section's markers are not this one's.
	if _, _, err := replaceSection([]byte("<!-- BEGIN AUTO-GENERATED tables -->\n<!-- END AUTO-GENERATED tables -->\n"), s, "x\n"); err == nil {
		t.Error("the markers of section tables were taken for table's")
	}
}

func TestSplitDoc(t *testing.T) {
	for _, c := range []struct {
		name, doc, goName, meaning, fallback string
	}{
		{"is is dropped and the rest capitalised", "Image is the sidecar's image.\n\nDefault: `backupImage`.\n", "Image",
			"The sidecar's image.", "`backupImage`"},
		{"are is dropped", "Args are the sidecar's\narguments.\n", "Args", "The sidecar's arguments.", ""},
		{"another verb keeps the key's name", "Image names the\nimage.\n", "Image", "`image` names the image.", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			jsonName := "`" + strings.ToLower(c.goName) + "`"
			meaning, fallback, err := splitDoc(c.doc, c.goName, jsonName)
			if err != nil || meaning != c.meaning || fallback != c.fallback {
				t.Errorf("got %q, %q, %v; want %q, %q", meaning, fallback, err, c.meaning, c.fallback)
			}
		})
	}
	if _, _, err := splitDoc("The image.\n", "Image", "`image`"); err == nil {
		t.Error("a comment that does not start with the field's name was accepted")
	}
	if _, _, err := splitDoc("Images are many.\n", "Image", "`image`"); err == nil {
		t.Error("a comment starting with a longer word was taken for the field's name")
	}
}
