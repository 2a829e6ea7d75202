package podinject

import (
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

var quantityType = reflect.TypeFor[resource.Quantity]()

// difference compares what tandem would add with what the pod already has under the same name. It returns the
// JSON path of the first field tandem sets that the pod's object does not match, or "" when they match. Fields
// tandem leaves empty are not compared: the API server defaults them (terminationMessagePath, a secret volume's
// defaultMode, ...) before tandem sees the pod, so they say nothing about who wrote the object.
func difference[T any](ours, theirs *T) string {
	return diff(reflect.ValueOf(ours).Elem(), reflect.ValueOf(theirs).Elem(), "")
}

func diff(ours, theirs reflect.Value, path string) string {
	if ours.IsZero() {
		return ""
	}
	switch ours.Kind() {
	case reflect.Pointer:
		if theirs.IsNil() {
			return orSelf(path)
		}
		return diff(ours.Elem(), theirs.Elem(), path)
	case reflect.Struct:
		if ours.Type() == quantityType {
			if q := ours.Interface().(resource.Quantity); q.Cmp(theirs.Interface().(resource.Quantity)) != 0 {
				return orSelf(path)
			}
			return ""
		}
		for i := range ours.NumField() {
			f := ours.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name := jsonName(f)
			if f.Anonymous && name == "" { // inlined, as VolumeSource in Volume
				if d := diff(ours.Field(i), theirs.Field(i), path); d != "" {
					return d
				}
				continue
			}
			if d := diff(ours.Field(i), theirs.Field(i), join(path, name)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if ours.Len() != theirs.Len() {
			return orSelf(path)
		}
		for i := range ours.Len() {
			if d := diff(ours.Index(i), theirs.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if ours.Len() != theirs.Len() {
			return orSelf(path)
		}
		for _, k := range ours.MapKeys() {
			t := theirs.MapIndex(k)
			if !t.IsValid() {
				return orSelf(path)
			}
			if d := diff(ours.MapIndex(k), t, fmt.Sprintf("%s[%v]", path, k)); d != "" {
				return d
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(ours.Interface(), theirs.Interface()) {
			return orSelf(path)
		}
		return ""
	}
}

func jsonName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	name, _, _ := strings.Cut(tag, ",")
	if name == "" && !f.Anonymous {
		return f.Name
	}
	return name
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orSelf(path string) string {
	if path == "" {
		return "the whole object"
	}
	return path
}
