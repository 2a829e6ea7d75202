package main

import (
	"fmt"
	"io"
	"strings"
)

// printDiff writes a unified-style diff of a section, committed against generated: the changed lines with one
// line of context, enough to see which row went stale. Sections are at most a few hundred lines, so a plain
// longest-common-subsequence table is fast enough.
func printDiff(out io.Writer, file, committed, generated string) {
	a, b := strings.Split(committed, "\n"), strings.Split(generated, "\n")
	// lcs[i][j] is the length of the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			lines = append(lines, line{' ', a[i]})
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, line{'-', a[i]})
			i++
		default:
			lines = append(lines, line{'+', b[j]})
			j++
		}
	}
	fmt.Fprintf(out, "--- %s (committed)\n+++ %s (generated)\n", file, file)
	changed := func(k int) bool { return k >= 0 && k < len(lines) && lines[k].op != ' ' }
	skipped := false
	for k, l := range lines {
		if l.op == ' ' && !changed(k-1) && !changed(k+1) {
			skipped = true
			continue
		}
		if skipped {
			fmt.Fprintln(out, "@@")
			skipped = false
		}
		fmt.Fprintf(out, "%c%s\n", l.op, l.text)
	}
}
