package main

import (
	"strings"

	"github.com/tandem-dev/tandem/webhook/annotations"
)

// renderAnnotations is the README's annotation table: every entry of annotations.All, in its order.
func renderAnnotations(string) (string, error) {
	var b strings.Builder
	b.WriteString("| annotation | meaning | when absent |\n|---|---|---|\n")
	for _, a := range annotations.All {
		absent := a.Default
		if a.SetByTandem {
			absent = "—"
		}
		row(&b, "`"+a.Key+"`", a.Description, absent)
	}
	return b.String(), nil
}

// row writes one row of a Markdown table.
func row(b *strings.Builder, cells ...string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" " + cell(c) + " |")
	}
	b.WriteString("\n")
}

// cell makes text fit in one table cell: one line, its pipes escaped.
func cell(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	return strings.ReplaceAll(text, "|", `\|`)
}
