package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tandem-dev/tandem/webhook/config"
)

// configSource is the file whose doc comments document the configuration's keys.
const configSource = "webhook/config/config.go"

// jobDefaultsAnchor is the README's section the Job and CronJob keys are documented in.
const jobDefaultsAnchor = "#job-and-cronjob-defaults"

// A key is one documented key of the configuration file.
type key struct {
	path     []string // JSON names, from the top: "profiles", "<name>", "image"
	goName   string   // the Go field, as its doc comment starts
	meaning  string   // the doc comment without its Default paragraph, as the table shows it
	fallback string   // the Default paragraph, without "Default:"; "" when it has none
	kind     keyKind
}

type keyKind int

const (
	leaf     keyKind = iota
	mapOf            // a map whose values are documented structs: profiles.<name>.*
	structOf         // a struct documented key by key in the Job and CronJob defaults: jobs.*, cronJobs.*
)

func (k key) name() string { return strings.Join(k.path, ".") }

// configKeys reads the configuration types from configSource: the fields of Config, and of every struct type a
// field of it holds, in the order they are declared.
func configKeys(root string) ([]key, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(root, configSource), nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	structs := map[string]*ast.StructType{}
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok {
			if st, ok := ts.Type.(*ast.StructType); ok {
				structs[ts.Name.Name] = st
			}
		}
		return true
	})
	var walk func(typeName string, prefix []string) ([]key, error)
	walk = func(typeName string, prefix []string) ([]key, error) {
		st, ok := structs[typeName]
		if !ok {
			return nil, fmt.Errorf("%s: no struct type %s", configSource, typeName)
		}
		var keys []key
		for _, field := range st.Fields.List {
			if len(field.Names) != 1 || field.Tag == nil {
				return nil, fmt.Errorf("%s: %s: every field of a configuration type has one name and a json tag", configSource, fset.Position(field.Pos()))
			}
			goName := field.Names[0].Name
			tag, err := strconv.Unquote(field.Tag.Value)
			if err != nil {
				return nil, err
			}
			jsonName, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
			if jsonName == "" || jsonName == "-" {
				return nil, fmt.Errorf("%s: %s.%s has no json name", configSource, typeName, goName)
			}
			k := key{path: append(append([]string(nil), prefix...), jsonName), goName: goName}
			if field.Doc == nil {
				return nil, fmt.Errorf("%s: %s.%s has no doc comment; the README's configuration reference is made from it", configSource, typeName, goName)
			}
			if k.meaning, k.fallback, err = splitDoc(field.Doc.Text(), goName, "`"+jsonName+"`"); err != nil {
				return nil, fmt.Errorf("%s: %s.%s: %w", configSource, typeName, goName, err)
			}
			keys = append(keys, k)
			switch t := field.Type.(type) {
			case *ast.Ident:
				if _, ok := structs[t.Name]; ok {
					keys[len(keys)-1].kind = structOf
					sub, err := walk(t.Name, k.path)
					if err != nil {
						return nil, err
					}
					keys = append(keys, sub...)
				}
			case *ast.MapType:
				elem := t.Value
				if star, ok := elem.(*ast.StarExpr); ok {
					elem = star.X
				}
				if id, ok := elem.(*ast.Ident); ok {
					if _, ok := structs[id.Name]; ok {
						keys[len(keys)-1].kind = mapOf
						sub, err := walk(id.Name, append(k.path, "<name>"))
						if err != nil {
							return nil, err
						}
						keys = append(keys, sub...)
					}
				}
			}
		}
		return keys, nil
	}
	return walk("Config", nil)
}

// splitDoc turns a field's doc comment into the table's meaning and default. The comment starts with the Go
// name, as Go doc comments do: "Name is ..." or "Name are ..." becomes "...", capitalised; any other opening
// puts the key's name (jsonName) in place of the Go name. A paragraph starting "Default:" is the default.
func splitDoc(doc, goName, jsonName string) (meaning, fallback string, err error) {
	var paragraphs []string
	for _, p := range strings.Split(strings.TrimSpace(doc), "\n\n") {
		p = strings.Join(strings.Fields(p), " ")
		if d, ok := strings.CutPrefix(p, "Default:"); ok {
			if fallback != "" {
				return "", "", fmt.Errorf("two Default paragraphs")
			}
			fallback = strings.TrimSuffix(strings.TrimSpace(d), ".")
			continue
		}
		paragraphs = append(paragraphs, p)
	}
	meaning = strings.Join(paragraphs, " ")
	rest, ok := strings.CutPrefix(meaning, goName)
	if !ok || (rest != "" && rest[0] != ' ' && rest[0] != ',') {
		return "", "", fmt.Errorf("the doc comment does not start with %s", goName)
	}
	for _, verb := range []string{" is ", " are "} {
		if after, ok := strings.CutPrefix(rest, verb); ok {
			return capitalise(after), fallback, nil
		}
	}
	return jsonName + rest, fallback, nil
}

func capitalise(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// renderConfiguration is the README's configuration table: the top-level keys and every profile key, with what
// applies when a key is left out; the Job and CronJob keys get one row each pointing at their own table.
func renderConfiguration(root string) (string, error) {
	keys, err := configKeys(root)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| key | meaning | default |\n|---|---|---|\n")
	inStruct := map[string]bool{}
	for _, k := range keys {
		if inStruct[k.path[0]] {
			continue
		}
		switch k.kind {
		case structOf:
			inStruct[k.path[0]] = true
			row(&b, "`"+k.name()+".*`", k.meaning, "[below]("+jobDefaultsAnchor+")")
		case mapOf:
			row(&b, "`"+k.name()+".<name>`", k.meaning, orNone(k.fallback))
		default:
			row(&b, "`"+k.name()+"`", k.meaning, orNone(k.fallback))
		}
	}
	return b.String(), nil
}

// renderJobDefaults is the README's table of the Job and CronJob defaults: each key of a struct-valued section
// of the configuration, its built-in value (from default.yaml) and its rule.
func renderJobDefaults(root string) (string, error) {
	keys, err := configKeys(root)
	if err != nil {
		return "", err
	}
	builtin, err := asJSON(config.Default())
	if err != nil {
		return "", err
	}
	sectionOf := map[string]bool{}
	var b strings.Builder
	b.WriteString("| key | built-in | rule |\n|---|---|---|\n")
	for _, k := range keys {
		if k.kind == structOf {
			sectionOf[k.path[0]] = true
			continue
		}
		if !sectionOf[k.path[0]] {
			continue
		}
		row(&b, "`"+k.name()+"`", builtinValue(builtin, k.path), k.meaning)
	}
	return b.String(), nil
}

// asJSON is v as the configuration file writes it.
func asJSON(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	err = json.Unmarshal(data, &m)
	return m, err
}

// builtinValue is the value at path in the built-in configuration, as the table shows it: null is "off".
func builtinValue(m map[string]any, path []string) string {
	var v any = m
	for _, p := range path {
		obj, _ := v.(map[string]any)
		v = obj[p]
	}
	if v == nil {
		return "`null` (off)"
	}
	if s, ok := v.(string); ok {
		return "`" + s + "`"
	}
	data, _ := json.Marshal(v)
	return "`" + string(data) + "`"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
