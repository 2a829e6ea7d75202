package patch

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Apply carries out ops (add, remove and replace, as RFC 6902 defines them) on doc, a document decoded from JSON
// into maps, slices and scalars (as k8s.io/apimachinery/pkg/util/json decodes it), and returns the document:
// the same maps, changed in place, or a new root when an operation replaces it. Values are encoded and decoded
// the same way, so the document stays one kind of tree. On an error, doc may be changed in part.
func Apply(doc any, ops []jsonpatch.Operation) (any, error) {
	for _, op := range ops {
		var err error
		if doc, err = apply(doc, op); err != nil {
			return doc, fmt.Errorf("%s %s: %w", op.Operation, op.Path, err)
		}
	}
	return doc, nil
}

func apply(doc any, op jsonpatch.Operation) (any, error) {
	var value any
	if op.Operation != "remove" {
		v, err := tree(op.Value)
		if err != nil {
			return doc, err
		}
		value = v
	}
	if op.Path == "" {
		if op.Operation == "remove" {
			return doc, fmt.Errorf("cannot remove the whole document")
		}
		return value, nil
	}
	segments, err := Split(op.Path)
	if err != nil {
		return doc, err
	}
	parent, err := walk(doc, segments[:len(segments)-1])
	if err != nil {
		return doc, err
	}
	last := segments[len(segments)-1]
	switch c := parent.(type) {
	case map[string]any:
		return doc, applyToObject(c, last, op.Operation, value)
	case []any:
		list, err := applyToList(c, last, op.Operation, value)
		if err != nil {
			return doc, err
		}
		// A list grows or shrinks by a new slice header: put it where the old one was.
		return replaceAt(doc, segments[:len(segments)-1], list)
	default:
		return doc, fmt.Errorf("%s is not an object or a list", Pointer(segments[:len(segments)-1]...))
	}
}

func applyToObject(m map[string]any, key, operation string, value any) error {
	_, exists := m[key]
	switch operation {
	case "add":
		m[key] = value
	case "replace":
		if !exists {
			return fmt.Errorf("no field %q to replace", key)
		}
		m[key] = value
	case "remove":
		if !exists {
			return fmt.Errorf("no field %q to remove", key)
		}
		delete(m, key)
	default:
		return fmt.Errorf("operation %q is not supported", operation)
	}
	return nil
}

func applyToList(l []any, index, operation string, value any) ([]any, error) {
	if index == "-" && operation == "add" {
		return append(l, value), nil
	}
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || i > len(l) || (i == len(l) && operation != "add") {
		return nil, fmt.Errorf("index %q is out of range of a list of %d", index, len(l))
	}
	switch operation {
	case "add":
		return append(l[:i], append([]any{value}, l[i:]...)...), nil
	case "replace":
		l[i] = value
		return l, nil
	case "remove":
		return append(l[:i], l[i+1:]...), nil
	}
	return nil, fmt.Errorf("operation %q is not supported", operation)
}

// walk returns the value at path in doc.
func walk(doc any, path []string) (any, error) {
	for i, key := range path {
		switch c := doc.(type) {
		case map[string]any:
			v, ok := c[key]
			if !ok {
				return nil, fmt.Errorf("%s does not exist", Pointer(path[:i+1]...))
			}
			doc = v
		case []any:
			n, err := strconv.Atoi(key)
			if err != nil || n < 0 || n >= len(c) {
				return nil, fmt.Errorf("%s is out of range", Pointer(path[:i+1]...))
			}
			doc = c[n]
		default:
			return nil, fmt.Errorf("%s is not an object or a list", Pointer(path[:i]...))
		}
	}
	return doc, nil
}

// replaceAt sets the value at path in doc (which exists) to v, and returns the document.
func replaceAt(doc any, path []string, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	parent, err := walk(doc, path[:len(path)-1])
	if err != nil {
		return doc, err
	}
	key := path[len(path)-1]
	switch c := parent.(type) {
	case map[string]any:
		c[key] = v
	case []any:
		n, _ := strconv.Atoi(key)
		c[n] = v
	}
	return doc, nil
}

// Split returns the unescaped segments of a JSON pointer.
func Split(pointer string) ([]string, error) {
	if !strings.HasPrefix(pointer, "/") {
		return nil, fmt.Errorf("%q is not a JSON pointer", pointer)
	}
	segments := strings.Split(pointer[1:], "/")
	for i, s := range segments {
		segments[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return segments, nil
}

// tree encodes v as JSON and decodes it as Apply's documents are decoded.
func tree(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = utiljson.Unmarshal(raw, &out)
	return out, err
}
