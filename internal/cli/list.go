package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/beans-slurm/beans-slurm/internal/registry"
)

var listKinds = []string{"tasks", "suites", "models", "prompts"}

func newListCmd(ios IO, g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:       "list [tasks|suites|models|prompts]",
		Short:     "List the registry's tasks, suites, model presets and prompts",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: listKinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := g.registry()
			if err != nil {
				return err
			}
			kinds := listKinds
			if len(args) == 1 {
				k := strings.TrimSuffix(args[0], "s") + "s"
				if !contains(listKinds, k) {
					return configError(fmt.Errorf("cannot list %q: choose one of %s", args[0], strings.Join(listKinds, ", ")))
				}
				kinds = []string{k}
			}
			if asJSON {
				out := map[string]any{}
				for _, k := range kinds {
					out[k] = entries(reg, k)
				}
				enc := json.NewEncoder(ios.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(ios.Out, 0, 4, 2, ' ', 0)
			for i, k := range kinds {
				if i > 0 {
					fmt.Fprintln(tw)
				}
				switch k {
				case "tasks":
					fmt.Fprintln(tw, "TASK\tTYPE\tROWS\tSOURCE\tDESCRIPTION")
					for _, t := range reg.Tasks() {
						fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", t.ID, t.Type, t.Rows, sourceName(t.Source), t.Description)
					}
				case "suites":
					fmt.Fprintln(tw, "SUITE\tTASKS\tDESCRIPTION")
					for _, s := range reg.Suites() {
						fmt.Fprintf(tw, "%s\t%d\t%s\n", s.ID, len(s.Tasks), s.Description)
					}
				case "models":
					fmt.Fprintln(tw, "MODEL\tLAUNCHER\tALIASES\tDESCRIPTION")
					for _, m := range reg.Models() {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ID, m.Launcher, strings.Join(m.Aliases, ","), m.Description)
					}
				case "prompts":
					fmt.Fprintln(tw, "PROMPT\tDESCRIPTION")
					for _, p := range reg.Prompts() {
						fmt.Fprintf(tw, "%s\t%s\n", p.ID, p.Description)
					}
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newDescribeCmd(ios IO, g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show one task, suite, model preset or prompt of the registry, and where it is defined",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := g.registry()
			if err != nil {
				return err
			}
			name := args[0]
			var found []struct {
				kind string
				v    any
			}
			add := func(kind string, v any, err error) {
				if err == nil {
					found = append(found, struct {
						kind string
						v    any
					}{kind, v})
				}
			}
			t, err := reg.Task(name)
			add("task", t, err)
			s, err := reg.Suite(name)
			add("suite", s, err)
			m, err := reg.Model(name)
			add("model", m, err)
			p, err := reg.Prompt(name)
			add("prompt", p, err)
			if len(found) == 0 {
				_, terr := reg.Task(name)
				return configError(fmt.Errorf("%q is not a task, suite, model or prompt of the registry (%v); see `beans-slurm list`", name, terr))
			}
			for i, f := range found {
				if i > 0 {
					fmt.Fprintln(ios.Out, "---")
				}
				id := name
				if mm, ok := f.v.(registry.Model); ok {
					id = mm.ID
				}
				if asJSON {
					enc := json.NewEncoder(ios.Out)
					enc.SetIndent("", "  ")
					if err := enc.Encode(map[string]any{"kind": f.kind, "origin": reg.Origin(f.kind, id), f.kind: f.v}); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(ios.Out, "# %s %s (from %s)\n", f.kind, id, reg.Origin(f.kind, id))
				b, err := yaml.Marshal(f.v)
				if err != nil {
					return err
				}
				ios.Out.Write(b)
				if f.kind == "suite" {
					tasks, err := reg.SuiteTasks(name)
					if err == nil {
						rows := 0
						for _, t := range tasks {
							rows += t.Rows
						}
						fmt.Fprintf(ios.Out, "# %d tasks, %d rows in all\n", len(tasks), rows)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func entries(reg *registry.Registry, kind string) any {
	switch kind {
	case "tasks":
		return reg.Tasks()
	case "suites":
		return reg.Suites()
	case "models":
		return reg.Models()
	default:
		return reg.Prompts()
	}
}

func sourceName(s registry.Source) string {
	if s.Repo != "" {
		return s.Kind + ":" + s.Repo
	}
	return s.Kind
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
