package patch_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/tandem-dev/tandem/internal/patch"
)

func TestEscapeAndPointer(t *testing.T) {
	if got := patch.Escape("tandem.dev/a~b"); got != "tandem.dev~1a~0b" {
		t.Errorf("Escape = %q", got)
	}
	if got := patch.Pointer("metadata", "annotations", "tandem.dev/backup"); got != "/metadata/annotations/tandem.dev~1backup" {
		t.Errorf("Pointer = %q", got)
	}
}

func TestAddAnnotation(t *testing.T) {
	ops := patch.AddAnnotation(nil, "/spec/template", nil, "tandem.dev/injected", "postgres")
	ops = patch.AddAnnotation(ops, "", map[string]string{"a": "b"}, "tandem.dev/defaulted", "spec.backoffLimit")
	want := `[{"op":"add","path":"/spec/template/metadata/annotations","value":{"tandem.dev/injected":"postgres"}},` +
		`{"op":"add","path":"/metadata/annotations/tandem.dev~1defaulted","value":"spec.backoffLimit"}]`
	if got, _ := patch.Marshal(ops); string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestApply checks the operations tandem makes, on a decoded document: appends, inserts, escaped keys, a list
// made whole, removal and replacement, large integers kept exact, and errors that name the missing place.
func TestApply(t *testing.T) {
	const doc = `{"metadata":{"name":"db","annotations":{"tandem.dev/backup":"postgres"}},` +
		`"spec":{"containers":[{"name":"db"}],"ttl":7,"big":9007199254740993}}`
	for _, tc := range []struct {
		name string
		ops  []jsonpatch.Operation
		want string // the document after ops, when err is ""
		err  string
	}{
		{"append to a list", []jsonpatch.Operation{jsonpatch.NewOperation("add", "/spec/containers/-", map[string]string{"name": "tandem-backup"})},
			`{"metadata":{"name":"db","annotations":{"tandem.dev/backup":"postgres"}},"spec":{"containers":[{"name":"db"},{"name":"tandem-backup"}],"ttl":7,"big":9007199254740993}}`, ""},
		{"insert into a list", []jsonpatch.Operation{jsonpatch.NewOperation("add", "/spec/containers/0", map[string]string{"name": "first"})},
			`{"metadata":{"name":"db","annotations":{"tandem.dev/backup":"postgres"}},"spec":{"containers":[{"name":"first"},{"name":"db"}],"ttl":7,"big":9007199254740993}}`, ""},
		{"escaped key, new list, remove, replace", []jsonpatch.Operation{
			jsonpatch.NewOperation("add", "/metadata/annotations/tandem.dev~1injected", "postgres"),
			jsonpatch.NewOperation("add", "/spec/volumes", []map[string]string{{"name": "backup-data"}}),
			jsonpatch.NewOperation("remove", "/spec/ttl", nil),
			jsonpatch.NewOperation("replace", "/metadata/name", "db-0"),
		}, `{"metadata":{"name":"db-0","annotations":{"tandem.dev/backup":"postgres","tandem.dev/injected":"postgres"}},"spec":{"containers":[{"name":"db"}],"volumes":[{"name":"backup-data"}],"big":9007199254740993}}`, ""},
		{"replace of a missing field", []jsonpatch.Operation{jsonpatch.NewOperation("replace", "/spec/missing", 1)}, "", `no field "missing" to replace`},
		{"add under a missing parent", []jsonpatch.Operation{jsonpatch.NewOperation("add", "/status/phase", "x")}, "", "/status does not exist"},
		{"index out of range", []jsonpatch.Operation{jsonpatch.NewOperation("remove", "/spec/containers/3", nil)}, "", "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tree any
			if err := utiljson.Unmarshal([]byte(doc), &tree); err != nil {
				t.Fatal(err)
			}
			got, err := patch.Apply(tree, tc.ops)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want any
			if err := utiljson.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				b, _ := json.Marshal(got)
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}
