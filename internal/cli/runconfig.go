package cli

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/spf13/pflag"

	"github.com/beans-slurm/beans-slurm/internal/registry"
)

// applyRunConfig sets every flag that a run file (run.yaml) gives and the command line does
// not: flags override the file. A key of the file is its flag's name with '_' for '-'.
func applyRunConfig(f *pflag.FlagSet, cfg registry.RunConfig) error {
	v := reflect.ValueOf(cfg)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || key == "" || key == "-" {
			continue
		}
		fv := v.Field(i)
		if fv.IsZero() {
			continue
		}
		name := strings.ReplaceAll(key, "_", "-")
		if name == "tasks" {
			name = "task"
		}
		fl := f.Lookup(name)
		if fl == nil {
			return fmt.Errorf("run config key %s has no flag --%s", key, name)
		}
		if fl.Changed {
			continue
		}
		if fv.Kind() == reflect.Slice {
			for j := 0; j < fv.Len(); j++ {
				if err := f.Set(name, fmt.Sprint(fv.Index(j).Interface())); err != nil {
					return fmt.Errorf("%s: %s: %w", cfg.Origin(), key, err)
				}
			}
			continue
		}
		if err := f.Set(name, fmt.Sprint(fv.Interface())); err != nil {
			return fmt.Errorf("%s: %s: %w", cfg.Origin(), key, err)
		}
	}
	return nil
}
