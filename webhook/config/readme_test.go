package config_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/webhook/config"
)

// TestREADMEDocumentsEveryKey checks that the README's configuration reference names every key of the
// configuration types.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := []struct {
		prefix string
		typ    reflect.Type
	}{
		{"", reflect.TypeFor[config.Config]()},
		{"profiles.<name>.", reflect.TypeFor[config.Profile]()},
		{"jobs.", reflect.TypeFor[config.JobDefaults]()},
		{"cronJobs.", reflect.TypeFor[config.CronJobDefaults]()},
	}
	for _, k := range keys {
		for i := range k.typ.NumField() {
			name, _, _ := strings.Cut(k.typ.Field(i).Tag.Get("json"), ",")
			if k.prefix == "" && name != "defaultProfile" {
				continue // the sections, documented key by key
			}
			if !strings.Contains(string(readme), "`"+k.prefix+name+"`") {
				t.Errorf("README does not document `%s%s`", k.prefix, name)
			}
		}
	}
}
