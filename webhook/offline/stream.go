package offline

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// document is one document of the input, with the bytes that come before it (a YAML separator line, the white
// space between JSON values), so that writing every lead and body in order gives back the input.
type document struct {
	lead, body []byte
	line       int // the line of the input where body starts
	json       bool
}

// splitDocuments cuts input into its documents: a stream of JSON values when it is one (what kubectl get -o json
// and jq write), multi-document YAML otherwise. It returns the bytes after the last document too.
func splitDocuments(input []byte) ([]document, []byte) {
	if docs, rest, ok := splitJSON(input); ok {
		return docs, rest
	}
	return splitYAML(input), nil
}

// splitJSON cuts input into JSON values; ok is false when input is not a stream of JSON values.
func splitJSON(input []byte) (docs []document, rest []byte, ok bool) {
	trimmed := bytes.TrimLeft(input, " \t\r\n")
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return nil, nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(input))
	prev := 0
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, input[prev:], true
		}
		if err != nil {
			return nil, nil, false // not JSON after all: YAML's parser says what is wrong, with its line
		}
		end := int(dec.InputOffset())
		start := end - len(raw)
		docs = append(docs, document{lead: input[prev:start], body: input[start:end], line: lineOf(input, start), json: true})
		prev = end
	}
}

// splitYAML cuts input at its separator lines, "---" alone or followed by a comment, as kubectl does.
func splitYAML(input []byte) []document {
	var (
		docs      []document
		cur       = document{line: 1}
		bodyStart = 0
		line      = 1
	)
	for pos := 0; pos < len(input); line++ {
		end := len(input)
		if i := bytes.IndexByte(input[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		text := input[pos:end]
		if rest, ok := bytes.CutPrefix(text, []byte("---")); ok {
			if rest = bytes.TrimSpace(rest); len(rest) == 0 || rest[0] == '#' {
				cur.body = input[bodyStart:pos]
				docs = append(docs, cur)
				cur, bodyStart = document{lead: text, line: line + 1}, end
			}
		}
		pos = end
	}
	cur.body = input[bodyStart:]
	return append(docs, cur)
}

// lineOf returns the line (1-based) of input that holds offset off.
func lineOf(input []byte, off int) int {
	return bytes.Count(input[:off], []byte("\n")) + 1
}

// firstContentLine returns the line of d's first line that is neither blank nor a comment: where its object
// starts, for messages.
func (d document) firstContentLine() int {
	line := d.line
	for _, l := range bytes.SplitAfter(d.body, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return line
		}
		line++
	}
	return d.line
}
