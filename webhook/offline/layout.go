package offline

// Keeping what the user wrote. A changed YAML document is edited where tandem changes it and nowhere else: each
// JSON patch operation tandem applied to the decoded document is carried out on the document's text, at the
// place go.yaml.in/yaml/v3's node tree says the field is, the new part rendered in the document's own
// indentation and sequence style. Comments, key order, quoting, flow style and blank lines elsewhere are the
// user's bytes. Where the text cannot be edited without guessing (an entry removed from a flow mapping, a
// multi-line scalar replaced), the document is re-encoded from its node tree instead: comments and key order
// kept, the layout yaml.v3's. JSON is patched on the same node tree, which keeps key order, and written as JSON in
// the input's indentation.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
	"gomodules.xyz/jsonpatch/v2"

	"github.com/tandem-dev/tandem/internal/patch"
)

// layoutError says that an operation cannot be carried out on the text without guessing.
type layoutError string

func (e layoutError) Error() string { return string(e) }

// style is how a YAML document lays out what it nests.
type style struct {
	indent  int  // spaces per level of a block mapping
	compact bool // a mapping's block sequence has its dashes at the key's column ("key:\n- a")
}

// yamlText is one YAML document's text and its node tree.
type yamlText struct {
	src   []byte
	lines []int // the offset of each line's first byte
	root  *yaml.Node
	order []*yaml.Node // every node, in the order the text holds them
	index map[*yaml.Node]int
	crlf  bool // the lines end with \r\n, and so do the ones tandem adds
}

func parseYAML(src []byte) (*yamlText, error) {
	root, err := parseNode(src)
	if err != nil {
		return nil, err
	}
	t := &yamlText{src: src, root: root, index: map[*yaml.Node]int{}, lines: []int{0}, crlf: bytes.Contains(src, []byte("\r\n"))}
	for i, c := range src {
		if c == '\n' {
			t.lines = append(t.lines, i+1)
		}
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		t.index[n] = len(t.order)
		t.order = append(t.order, n)
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	return t, nil
}

// parseNode decodes one document into its root node, refusing what the text edit and the node patch cannot
// follow: anchors, aliases and merge keys, through which one edit would change several places.
func parseNode(src []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, layoutError("not one YAML document")
	}
	var check func(n *yaml.Node) error
	check = func(n *yaml.Node) error {
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			return layoutError("the document uses YAML anchors and aliases")
		}
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 && c.Value == "<<" && c.Tag == "!!merge" {
				return layoutError("the document uses YAML merge keys")
			}
			if err := check(c); err != nil {
				return err
			}
		}
		return nil
	}
	return doc.Content[0], check(doc.Content[0])
}

// spliceYAML carries out ops on the text of a YAML document.
func spliceYAML(src []byte, ops []jsonpatch.Operation) ([]byte, error) {
	t, err := parseYAML(src)
	if err != nil {
		return nil, err
	}
	st := t.style()
	for _, op := range ops {
		out, err := t.apply(op, st)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", op.Operation, op.Path, err)
		}
		if t, err = parseYAML(out); err != nil {
			return nil, fmt.Errorf("%s %s made a document that does not parse: %w", op.Operation, op.Path, err)
		}
	}
	return t.src, nil
}

// style reads the document's indentation and sequence style from its first nested mapping and its first
// sequence under a key; a document with neither gets two spaces and indented sequences.
func (t *yamlText) style() style {
	st := style{indent: 2}
	var indentFound, seqFound bool
	for _, n := range t.order {
		if n.Kind != yaml.MappingNode || n.Style&yaml.FlowStyle != 0 {
			continue
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if len(v.Content) == 0 || v.Style&yaml.FlowStyle != 0 {
				continue
			}
			switch {
			case v.Kind == yaml.MappingNode && !indentFound && v.Line > k.Line && v.Content[0].Column > k.Column:
				st.indent, indentFound = v.Content[0].Column-k.Column, true
			case v.Kind == yaml.SequenceNode && !seqFound:
				st.compact, seqFound = v.Column == k.Column, true
			}
		}
		if indentFound && seqFound {
			break
		}
	}
	return st
}

func (t *yamlText) apply(op jsonpatch.Operation, st style) ([]byte, error) {
	parent, key, v, err := target(t.root, op)
	if err != nil {
		return nil, err
	}
	switch parent.Kind {
	case yaml.MappingNode:
		i := entry(parent, key)
		switch {
		case op.Operation == "remove" && i >= 0:
			return t.removeEntry(parent, i)
		case (op.Operation == "add" || op.Operation == "replace") && i >= 0:
			return t.replaceValue(parent, i, v, st)
		case op.Operation == "add":
			return t.addTo(parent, pair(key, v), st)
		}
	case yaml.SequenceNode:
		if op.Operation == "add" && (key == "-" || key == strconv.Itoa(len(parent.Content))) {
			return t.addTo(parent, &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{v}}, st)
		}
	}
	return nil, layoutError("not an operation the text edit carries out")
}

// target returns the collection below root that op changes, the key or index op names in it, and op's value
// as a node (nil for a remove).
func target(root *yaml.Node, op jsonpatch.Operation) (parent *yaml.Node, key string, v *yaml.Node, err error) {
	segments, err := patch.Split(op.Path)
	if err != nil {
		return nil, "", nil, err
	}
	if parent, err = find(root, segments[:len(segments)-1]); err != nil {
		return nil, "", nil, err
	}
	if op.Operation != "remove" {
		if v, err = valueNode(op.Value); err != nil {
			return nil, "", nil, err
		}
	}
	return parent, segments[len(segments)-1], v, nil
}

// find returns the node at path below n.
func find(n *yaml.Node, path []string) (*yaml.Node, error) {
	for i, key := range path {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			if j := entry(n, key); j >= 0 {
				next = n.Content[2*j+1]
			}
		case yaml.SequenceNode:
			if j, err := strconv.Atoi(key); err == nil && j >= 0 && j < len(n.Content) {
				next = n.Content[j]
			}
		}
		if next == nil {
			return nil, fmt.Errorf("%s is not in the document", patch.Pointer(path[:i+1]...))
		}
		n = next
	}
	return n, nil
}

// entry returns the index of key's entry in the mapping m, or -1.
func entry(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return i / 2
		}
	}
	return -1
}

// addTo adds node's one entry (c a mapping) or item (c a sequence) after the last of the collection c.
func (t *yamlText) addTo(c *yaml.Node, node *yaml.Node, st style) ([]byte, error) {
	if c.Style&yaml.FlowStyle != 0 || len(c.Content) == 0 {
		return t.flowInsert(c, node)
	}
	col := c.Content[0].Column - 1 // a block mapping's keys
	if c.Kind == yaml.SequenceNode {
		col = c.Column - 1 // a block sequence's position is its first dash
	}
	p, err := t.end(c, col)
	if err != nil {
		return nil, err
	}
	text, err := st.block(node)
	if err != nil {
		return nil, err
	}
	return t.insert(p, indent(text, col, true)), nil
}

func (t *yamlText) replaceValue(m *yaml.Node, i int, v *yaml.Node, st style) ([]byte, error) {
	k, old := m.Content[2*i], m.Content[2*i+1]
	start := t.offset(old)
	switch {
	case old.Kind == yaml.ScalarNode && old.Tag == "!!null" && old.Value == "" && m.Style&yaml.FlowStyle == 0:
		// "key:" with nothing after it: the value takes no text; rewrite the key's line.
		start, end := t.offset(k), t.lineEnd(t.offset(k))
		if bytes.Contains(t.src[start:end], []byte("#")) || t.lineEnd(start) != t.lineEnd(t.offset(old)) {
			return nil, layoutError("an empty value with a comment, or not on its key's line")
		}
		text, err := st.block(pair(k.Value, v))
		if err != nil {
			return nil, err
		}
		return t.splice(start, end, indent(text, m.Content[0].Column-1, false)), nil
	case old.Kind == yaml.ScalarNode && old.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 && v.Kind == yaml.ScalarNode:
		end, err := t.scalarEnd(old, m.Style&yaml.FlowStyle != 0)
		if err != nil {
			return nil, err
		}
		text, err := scalar(v, m.Style&yaml.FlowStyle != 0)
		if err != nil {
			return nil, err
		}
		return t.splice(start, end, text), nil
	case old.Style&yaml.FlowStyle != 0 && (old.Kind == yaml.MappingNode || old.Kind == yaml.SequenceNode):
		end, err := flowEnd(t.src, start)
		if err != nil {
			return nil, err
		}
		text, err := flowText(v)
		if err != nil {
			return nil, err
		}
		return t.splice(start, end, text), nil
	case m.Style&yaml.FlowStyle == 0:
		col := m.Content[0].Column - 1
		end, err := t.end(old, col)
		if err != nil {
			return nil, err
		}
		text, err := st.block(pair(k.Value, v))
		if err != nil {
			return nil, err
		}
		return t.splice(t.offset(k), end, indent(text, col, false)), nil
	}
	return nil, layoutError("a value inside a flow mapping")
}

func (t *yamlText) removeEntry(m *yaml.Node, i int) ([]byte, error) {
	if m.Style&yaml.FlowStyle != 0 {
		return nil, layoutError("an entry of a flow mapping")
	}
	if len(m.Content) == 2 {
		return nil, layoutError("the only entry of a mapping")
	}
	k, v := m.Content[2*i], m.Content[2*i+1]
	start := t.offset(k)
	end, err := t.end(v, m.Content[0].Column-1)
	if err != nil {
		return nil, err
	}
	if ls := t.lineStart(start); len(bytes.TrimLeft(t.src[ls:start], " ")) == 0 {
		return t.splice(ls, end, ""), nil
	}
	// The key follows a sequence's dash: the next key moves up to the dash.
	if 2*i+2 < len(m.Content) {
		return t.splice(start, t.offset(m.Content[2*i+2]), ""), nil
	}
	return nil, layoutError("the last entry of a mapping that follows a dash")
}

// flowInsert adds node's only entry (of a mapping) or item (of a sequence) to the flow collection c.
func (t *yamlText) flowInsert(c, node *yaml.Node) ([]byte, error) {
	start := t.offset(c)
	if start >= len(t.src) || (t.src[start] != '{' && t.src[start] != '[') {
		return nil, layoutError("an empty collection that is not written {} or []")
	}
	end, err := flowEnd(t.src, start)
	if err != nil {
		return nil, err
	}
	text, err := flowText(node)
	if err != nil {
		return nil, err
	}
	text = text[1 : len(text)-1] // the entry without its collection's brackets
	q := end - 2                 // the last character before the closing bracket that is not white space
	for q > start && (t.src[q] == ' ' || t.src[q] == '\t' || t.src[q] == '\n' || t.src[q] == '\r') {
		q--
	}
	if bytes.Contains(t.src[t.lineStart(q):q+1], []byte(" #")) {
		return nil, layoutError("a comment inside a flow collection")
	}
	if q > start {
		text = ", " + text
	}
	return t.splice(q+1, q+1, text), nil
}

// end returns where the text of n, and of everything nested in it, ends: the start of the line after its last
// line, before the blank lines and the comments at or left of column col that follow (they belong to what
// comes next).
func (t *yamlText) end(n *yaml.Node, col int) (int, error) {
	last := n
	for len(last.Content) > 0 {
		last = last.Content[len(last.Content)-1]
	}
	if last.Kind == yaml.ScalarNode && last.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 && strings.HasSuffix(last.Value, "\n\n") {
		return 0, layoutError("a block scalar that keeps its trailing blank lines")
	}
	p := len(t.src)
	if i := t.index[last] + 1; i < len(t.order) {
		p = t.lineStart(t.offset(t.order[i]))
	}
	floor := t.lineEnd(t.offset(last))
	if p < floor {
		return 0, layoutError("something follows on the same line")
	}
	for p > floor {
		prev := t.lineStart(p - 1)
		line := t.src[prev:p]
		content := bytes.TrimLeft(line, " \t")
		blank := len(bytes.TrimSpace(content)) == 0
		if !blank && (content[0] != '#' || len(line)-len(content) > col) {
			break
		}
		p = prev
	}
	return p, nil
}

// scalarEnd returns where the single-line scalar s ends.
func (t *yamlText) scalarEnd(s *yaml.Node, inFlow bool) (int, error) {
	start := t.offset(s)
	lineEnd := t.lineEnd(start)
	src := t.src[:lineEnd]
	end := start
	switch {
	case start < len(src) && src[start] == '"':
		for end = start + 1; end < len(src) && src[end] != '"'; end++ {
			if src[end] == '\\' {
				end++
			}
		}
		end++
	case start < len(src) && src[start] == '\'':
		for end = start + 1; end < len(src); end++ {
			if src[end] == '\'' {
				if end+1 < len(src) && src[end+1] == '\'' {
					end++
					continue
				}
				break
			}
		}
		end++
	default:
		for end = start; end < len(src) && src[end] != '\n' && src[end] != '\r'; end++ {
			if src[end] == '#' && end > start && (src[end-1] == ' ' || src[end-1] == '\t') {
				break
			}
			if inFlow && (src[end] == ',' || src[end] == '}' || src[end] == ']') {
				break
			}
		}
		for end > start && (src[end-1] == ' ' || src[end-1] == '\t') {
			end--
		}
		if string(src[start:end]) != s.Value {
			return 0, layoutError("a scalar over several lines")
		}
	}
	if end > len(src) {
		return 0, layoutError("a quoted scalar over several lines")
	}
	return end, nil
}

// flowEnd returns the offset just after the flow collection that starts at start.
func flowEnd(src []byte, start int) (int, error) {
	depth := 0
	for i := start; i < len(src); i++ {
		switch c := src[i]; c {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		case '"', '\'':
			if prev := src[i-1]; !strings.ContainsRune("{[, \t\n:", rune(prev)) {
				continue // a quote inside a plain scalar
			}
			for i++; i < len(src) && src[i] != c; i++ {
				if c == '"' && src[i] == '\\' {
					i++
				}
			}
		case '#':
			if prev := src[i-1]; prev == ' ' || prev == '\t' || prev == '\n' {
				for i < len(src) && src[i] != '\n' {
					i++
				}
			}
		}
	}
	return 0, layoutError("a flow collection that does not end")
}

// offset is the byte offset of n's first character. yaml.v3 counts columns in characters.
func (t *yamlText) offset(n *yaml.Node) int {
	if n.Line < 1 || n.Line > len(t.lines) {
		return len(t.src)
	}
	off := t.lines[n.Line-1]
	for col := 1; col < n.Column && off < len(t.src); col++ {
		_, size := utf8.DecodeRune(t.src[off:])
		off += size
	}
	return off
}

// lineStart returns the offset of the first byte of the line holding off.
func (t *yamlText) lineStart(off int) int {
	i := sort.Search(len(t.lines), func(i int) bool { return t.lines[i] > off }) - 1
	return t.lines[max(i, 0)]
}

// lineEnd returns the offset just after the line holding off, its newline included.
func (t *yamlText) lineEnd(off int) int {
	i := sort.Search(len(t.lines), func(i int) bool { return t.lines[i] > off })
	if i < len(t.lines) {
		return t.lines[i]
	}
	return len(t.src)
}

// insert puts lines of text (each ending with a newline) at p, the start of a line or the end of the text.
func (t *yamlText) insert(p int, text string) []byte {
	if p == len(t.src) && p > 0 && t.src[p-1] != '\n' {
		text = "\n" + text
	}
	return t.splice(p, p, text)
}

func (t *yamlText) splice(start, end int, text string) []byte {
	if t.crlf {
		text = strings.ReplaceAll(text, "\n", "\r\n")
	}
	out := make([]byte, 0, len(t.src)-(end-start)+len(text))
	out = append(out, t.src[:start]...)
	out = append(out, text...)
	return append(out, t.src[end:]...)
}

// indent puts n spaces before each line of text that is not empty, the first one too when first is set.
func indent(text string, n int, first bool) string {
	pad := strings.Repeat(" ", n)
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		if (i > 0 || first) && strings.TrimSpace(l) != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "")
}

// block renders n as block YAML in the document's style, each line ending with a newline. tandem renders what
// it adds itself: yaml.v3's encoder cannot put a sequence's dashes at its key's column under a four-space
// indentation, and folds long strings over lines.
func (st style) block(n *yaml.Node) (string, error) {
	lines, err := st.lines(n)
	if err != nil {
		return "", err
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// lines renders n as block YAML, its first line at column 0.
func (st style) lines(n *yaml.Node) ([]string, error) {
	switch {
	case n.Kind == yaml.MappingNode && len(n.Content) > 0:
		var out []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, err := scalar(n.Content[i], false)
			if err != nil {
				return nil, err
			}
			v := n.Content[i+1]
			if v.Kind == yaml.ScalarNode || len(v.Content) == 0 {
				value, err := scalar(v, false)
				if v.Kind != yaml.ScalarNode {
					value, err = flowText(v) // {} or []
				}
				if err != nil {
					return nil, err
				}
				out = append(out, key+": "+value)
				continue
			}
			nested, err := st.lines(v)
			if err != nil {
				return nil, err
			}
			pad := st.indent
			if v.Kind == yaml.SequenceNode && st.compact {
				pad = 0
			}
			out = append(out, key+":")
			for _, l := range nested {
				out = append(out, strings.Repeat(" ", pad)+l)
			}
		}
		return out, nil
	case n.Kind == yaml.SequenceNode && len(n.Content) > 0:
		var out []string
		for _, item := range n.Content {
			nested, err := st.lines(item)
			if err != nil {
				return nil, err
			}
			out = append(out, "- "+nested[0])
			for _, l := range nested[1:] {
				out = append(out, "  "+l)
			}
		}
		return out, nil
	}
	text, err := scalar(n, false)
	if n.Kind != yaml.ScalarNode {
		text, err = flowText(n)
	}
	return []string{text}, err
}

// flowText renders n on one line, its collections in flow style.
func flowText(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		open, close, step := "[", "]", 1
		if n.Kind == yaml.MappingNode {
			open, close, step = "{", "}", 2
		}
		parts := make([]string, 0, len(n.Content)/step)
		for i := 0; i+step-1 < len(n.Content); i += step {
			value, err := flowText(n.Content[i+step-1])
			if err != nil {
				return "", err
			}
			if step == 2 {
				key, err := scalar(n.Content[i], true)
				if err != nil {
					return "", err
				}
				value = key + ": " + value
			}
			parts = append(parts, value)
		}
		return open + strings.Join(parts, ", ") + close, nil
	case yaml.ScalarNode:
		return scalar(n, true)
	}
	return "", layoutError("an alias in a value")
}

// safeInFlow are the plain strings that mean the same inside a flow collection.
var safeInFlow = regexp.MustCompile(`^[A-Za-z0-9_./][A-Za-z0-9_./@+=-]*$`)

// scalar renders one scalar on one line: plain where YAML 1.1 and 1.2 both read it as written (and, inFlow,
// where it has none of a flow collection's punctuation), as a JSON string (which YAML reads too) otherwise.
func scalar(n *yaml.Node, inFlow bool) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", layoutError("a key that is not a scalar")
	}
	if n.Tag != "!!str" {
		return n.Value, nil // a number, a boolean or null, as JSON wrote it
	}
	var q bytes.Buffer // a JSON string without HTML's escapes: > stays >
	if err := writeJSONString(&q, n.Value); err != nil {
		return "", err
	}
	quoted := q.String()
	if n.Style&yaml.DoubleQuotedStyle != 0 || strings.ContainsAny(n.Value, "\n\r\t") || (inFlow && !safeInFlow.MatchString(n.Value)) {
		return quoted, nil
	}
	var b strings.Builder
	e := yaml.NewEncoder(&b)
	if err := e.Encode(n); err != nil {
		return "", err
	}
	if err := e.Close(); err != nil {
		return "", err
	}
	text := strings.TrimSuffix(b.String(), "\n")
	if strings.Contains(text, "\n") {
		return quoted, nil // folded over lines
	}
	return text, nil
}

// encode renders the whole document n with yaml.v3's encoder, which keeps its comments.
func (st style) encode(n *yaml.Node) (string, error) {
	var b strings.Builder
	e := yaml.NewEncoder(&b)
	e.SetIndent(st.indent)
	if st.compact && st.indent == 2 {
		e.CompactSeqIndent()
	}
	if err := e.Encode(n); err != nil {
		return "", err
	}
	if err := e.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}

func pair(key string, v *yaml.Node) *yaml.Node {
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	plain(k)
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{k, v}}
}

// valueNode is the node of a patch operation's value: its JSON, with the keys in the order the JSON has them
// (a Go struct's field order), rendered the way YAML is usually written.
func valueNode(v any) (*yaml.Node, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	n := doc.Content[0]
	plain(n)
	return n, nil
}

// yaml11Plain are the plain scalars YAML 1.1 parsers (the one kubectl and the API server use among them) read
// as booleans or sexagesimal numbers though YAML 1.2, which yaml.v3 writes, reads them as strings.
var yaml11Plain = regexp.MustCompile(`^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)$`)

// plain clears the styles JSON gave n and its children (flow collections, quoted strings); a string a YAML 1.1
// parser would read as something else stays quoted (yaml.v3 quotes what YAML 1.2 would misread).
func plain(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && yaml11Plain.MatchString(n.Value) {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		plain(c)
	}
}

// patchNode carries out ops on the node tree whose root is root.
func patchNode(root *yaml.Node, ops []jsonpatch.Operation) error {
	for _, op := range ops {
		if err := patchOne(root, op); err != nil {
			return fmt.Errorf("%s %s: %w", op.Operation, op.Path, err)
		}
	}
	return nil
}

func patchOne(root *yaml.Node, op jsonpatch.Operation) error {
	parent, key, v, err := target(root, op)
	if err != nil {
		return err
	}
	switch parent.Kind {
	case yaml.MappingNode:
		i := entry(parent, key)
		switch {
		case op.Operation == "remove" && i >= 0:
			parent.Content = slices.Delete(parent.Content, 2*i, 2*i+2)
		case (op.Operation == "add" || op.Operation == "replace") && i >= 0:
			parent.Content[2*i+1] = v
		case op.Operation == "add":
			parent.Content = append(parent.Content, pair(key, v).Content...)
		default:
			return fmt.Errorf("no field %q", key)
		}
	case yaml.SequenceNode:
		i, err := strconv.Atoi(key)
		if key == "-" {
			i, err = len(parent.Content), nil
		}
		if err != nil || i < 0 || i > len(parent.Content) || (i == len(parent.Content) && op.Operation != "add") {
			return fmt.Errorf("index %q is out of range", key)
		}
		switch op.Operation {
		case "add":
			parent.Content = slices.Insert(parent.Content, i, v)
		case "replace":
			parent.Content[i] = v
		case "remove":
			parent.Content = slices.Delete(parent.Content, i, i+1)
		}
	default:
		return fmt.Errorf("the parent is not a mapping or a sequence")
	}
	return nil
}

// writeJSON writes the node tree n as JSON, each level indented by unit ("" writes it on one line).
func writeJSON(b *bytes.Buffer, n *yaml.Node, unit string, depth int) error {
	newline := func(d int) {
		if unit != "" {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(unit, d))
		}
	}
	colon := ":"
	if unit != "" {
		colon = ": "
	}
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		open, close, step := byte('['), byte(']'), 1
		if n.Kind == yaml.MappingNode {
			open, close, step = '{', '}', 2
		}
		b.WriteByte(open)
		for i := 0; i < len(n.Content); i += step {
			if i > 0 {
				b.WriteByte(',')
			}
			newline(depth + 1)
			if step == 2 {
				if err := writeJSONString(b, n.Content[i].Value); err != nil {
					return err
				}
				b.WriteString(colon)
			}
			if err := writeJSON(b, n.Content[i+step-1], unit, depth+1); err != nil {
				return err
			}
		}
		if len(n.Content) > 0 {
			newline(depth)
		}
		b.WriteByte(close)
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return writeJSONString(b, n.Value)
		case "!!null":
			b.WriteString("null")
		case "!!bool", "!!int", "!!float":
			if !json.Valid([]byte(n.Value)) {
				return fmt.Errorf("%q is not a JSON value", n.Value)
			}
			b.WriteString(n.Value)
		default:
			return fmt.Errorf("a %s value has no JSON form", n.Tag)
		}
	default:
		return fmt.Errorf("a YAML alias has no JSON form")
	}
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) error {
	e := json.NewEncoder(b)
	e.SetEscapeHTML(false)
	if err := e.Encode(s); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
}

// jsonIndent returns the indentation unit of a JSON document: the white space before its second line's first
// value, or "" for a document on one line.
func jsonIndent(doc []byte) string {
	doc = bytes.TrimSpace(doc)
	i := bytes.IndexByte(doc, '\n')
	if i < 0 {
		return ""
	}
	rest := doc[i+1:]
	n := len(rest) - len(bytes.TrimLeft(rest, " \t"))
	if n == 0 {
		return ""
	}
	return string(rest[:n])
}
