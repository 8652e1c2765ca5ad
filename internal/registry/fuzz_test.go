package registry

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzTaskFile loads arbitrary bytes as a task file: the loader never panics, either accepts
// a valid task or reports problems that all name the file.
func FuzzTaskFile(f *testing.F) {
	f.Add([]byte(okTask))
	f.Add([]byte(strings.Replace(okTask, "my_task", "fuzz_task", 1)))
	f.Add([]byte("id: fuzz_task\ntype: detection\nsource: {kind: demo}\ndataset_names: [a]\nlabels: [x]\nprompt: demo_instruction\n"))
	f.Add([]byte("id: fuzz_task\ncolour: blue\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("a: &x {b: *x}\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("id: [1, 2]\nrows: 1e400\naudio_cap_seconds: .nan\n"))
	f.Add([]byte{0xff, 0xfe, 0x00})
	const file = "fuzz/tasks/fuzz_task.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		// Only this file and the prompts it may name: loading the whole embedded registry
		// on every input would make fuzzing crawl.
		r, err := load(fsLayer(fstest.MapFS{
			"tasks/fuzz_task.yaml":                {Data: data},
			"prompts/beans_zero_instruction.yaml": {Data: []byte("id: beans_zero_instruction\ntemplate: \"{{.Instruction}}\"\n")},
			"prompts/demo_instruction.yaml":       {Data: []byte("id: demo_instruction\ntemplate: \"{{.Instruction}}\"\n")},
		}, "fuzz"))
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error %T %v is not a *LoadError with problems", err, err)
			}
			for _, p := range le.Problems {
				if p.File != file || p.Msg == "" {
					t.Fatalf("problem %+v does not name %s or is empty", p, file)
				}
			}
			return
		}
		task, err := r.Task("fuzz_task")
		if err != nil {
			t.Fatalf("loaded without error but the task is missing: %v", err)
		}
		if task.ID != "fuzz_task" || !slices.Contains(taskTypes, task.Type) || len(task.DatasetNames) == 0 || r.Origin(KindTask, "fuzz_task") != file {
			t.Fatalf("accepted an invalid task: %+v", task)
		}
	})
}

// FuzzConfigFiles parses arbitrary bytes as a clusters file, a sweep and a run config: the
// parsers never panic, and every failure is a *LoadError whose problems name the file.
func FuzzConfigFiles(f *testing.F) {
	f.Add([]byte(okClusters))
	f.Add(ExampleClusters())
	f.Add([]byte("models: [af3, {model: x, env: {A: b}, gpus: 1}]\nsuite: s\n"))
	f.Add([]byte("clusters: {a: {host: h, work_dir: /w, poll: {initial: 1h, max: 1s}}}\n"))
	f.Add([]byte("model: m\npredict_url: http://h/p\ntimeout: 1s\ntasks: [a]\n"))
	f.Add([]byte("models:\n  - &a {model: x}\n  - *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(err error) {
			if err == nil {
				return
			}
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error %T %v is not a *LoadError with problems", err, err)
			}
			for _, p := range le.Problems {
				if p.File != "f.yaml" || p.Msg == "" {
					t.Fatalf("problem %+v does not name f.yaml or is empty", p)
				}
			}
		}
		c, err := ParseClusters(data, "f.yaml")
		check(err)
		if err == nil {
			for _, n := range c.Names() {
				cl, err := c.Lookup(n)
				if err != nil || cl.WorkDir == "" || cl.Poll.Initial <= 0 || cl.Poll.Max < cl.Poll.Initial {
					t.Fatalf("accepted an invalid profile %+v (%v)", cl, err)
				}
			}
		}
		s, err := ParseSweepConfig(data, "f.yaml")
		check(err)
		if err == nil && (len(s.Models) == 0 || (s.Suite == "" && len(s.Tasks) == 0)) {
			t.Fatalf("accepted an invalid sweep %+v", s)
		}
		_, err = ParseRunConfig(data, "f.yaml")
		check(err)
	})
}
