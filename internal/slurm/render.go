package slurm

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"text/template"

	"github.com/beans-slurm/beans-slurm/internal/remote"
	"github.com/beans-slurm/beans-slurm/templates/sbatch"
)

// Resources are a job's #SBATCH resource options; empty ones are left out of the script.
type Resources struct {
	Partition  string // "gpu" or "a,b"
	Account    string
	QoS        string
	Time       string   // MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
	Memory     string   // per node: 1024 (MB), 500M, 16G
	Exclude    string   // node list: "node[01-04],gpu7"
	Constraint string   // node features: "a100&ib"
	CPUs       int      // --cpus-per-task; 0 leaves it out
	GRES       string   // e.g. "gpu:1" or "gpu:a100:1" (already expanded), "" for none
	Extra      []string // extra #SBATCH options, e.g. "--reservation=x"
}

// EnvVar is a non-secret environment variable exported by a job script.
type EnvVar struct {
	Name  string // [A-Z_][A-Z0-9_]*
	Value string // any text without newline or NUL; quoted in the script
}

// Script is everything a job script holds. Render checks every field before it renders.
type Script struct {
	Role    string // "serve" or "infer"
	JobName string // beans-<sweep>-<model>-<role>
	Comment string // e.g. "beans-slurm sweep=<id>"
	WorkDir string // --chdir: absolute
	LogDir  string // logs go to LogDir/%x-%j.out (%x-%A_%a.out for arrays); absolute, must exist
	Resources
	ArraySize int      // infer only: > 1 renders --array=0-(N-1)
	Signal    string   // e.g. "B:TERM@120" → #SBATCH --signal
	Setup     []string // the cluster profile's environment lines (module load …), verbatim
	Env       []EnvVar // exported before the command
	Binary    string   // remote path of the beans-slurm binary
	Args      []string // arguments after the binary, each quoted; the infer script adds --serve-job "$1"
}

var (
	templatesOnce sync.Once
	templates     *template.Template
	templatesErr  error
)

func loadTemplates() (*template.Template, error) {
	templatesOnce.Do(func() {
		funcs := template.FuncMap{
			"quote": remote.Quote,
			"sub":   func(a, b int) int { return a - b },
		}
		templates, templatesErr = template.New("sbatch").Option("missingkey=error").Funcs(funcs).ParseFS(sbatch.FS, "*.tmpl")
	})
	return templates, templatesErr
}

// Render checks s and renders its job script from the embedded templates
// (templates/sbatch/<role>.sh.tmpl). Every error names the field and its value.
func Render(s Script) ([]byte, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	t, err := loadTemplates()
	if err != nil {
		return nil, fmt.Errorf("sbatch templates: %w", err)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, s.Role+".sh.tmpl", s); err != nil {
		return nil, fmt.Errorf("render the %s script %s: %w", s.Role, s.JobName, err)
	}
	return buf.Bytes(), nil
}

// The character sets of values that reach #SBATCH lines (read by sbatch, not a shell: they
// must not need quoting).
var (
	reJobName    = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	reComment    = regexp.MustCompile(`^[A-Za-z0-9._:=,/+@ -]+$`)
	reNames      = regexp.MustCompile(`^[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*$`)
	reName       = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	reTime       = regexp.MustCompile(`^([0-9]+|[0-9]+:[0-9]+|[0-9]+:[0-9]+:[0-9]+|[0-9]+-[0-9]+|[0-9]+-[0-9]+:[0-9]+|[0-9]+-[0-9]+:[0-9]+:[0-9]+|UNLIMITED|INFINITE)$`)
	reMemory     = regexp.MustCompile(`^[0-9]+[KMGTkmgt]?$`)
	reNodeList   = regexp.MustCompile(`^[A-Za-z0-9._,\[\]-]+$`)
	reConstraint = regexp.MustCompile(`^[A-Za-z0-9._,&|*\[\]():!-]+$`)
	reGRES       = regexp.MustCompile(`^[A-Za-z0-9_]+(:[A-Za-z0-9._-]+)*(,[A-Za-z0-9_]+(:[A-Za-z0-9._-]+)*)*$`)
	rePath       = regexp.MustCompile(`^/[A-Za-z0-9._/+@-]*$`)
	reSignal     = regexp.MustCompile(`^((B|R|RB|BR):)?[A-Z0-9]+(@[0-9]+)?$`)
	reExtra      = regexp.MustCompile(`^--[a-z][a-z0-9-]*(=[A-Za-z0-9._,:/+@%=\[\]-]+)?$`)
	reEnvName    = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
)

// FieldError is a Script field whose value Render refuses.
type FieldError struct {
	Field string
	Value string
	Want  string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("sbatch script: %s %q: %s", e.Field, clip(e.Value), e.Want)
}

// Check reports the first field of s that cannot go into a job script.
func (s Script) Check() error {
	// No newline, carriage return or NUL anywhere: each would end a line (or the script).
	plain := func(field, v string) error {
		if strings.ContainsAny(v, "\n\r\x00") {
			return &FieldError{field, v, "must not hold a newline, carriage return or NUL"}
		}
		return nil
	}
	match := func(field, v string, re *regexp.Regexp, want string, required bool) error {
		if err := plain(field, v); err != nil {
			return err
		}
		if v == "" {
			if required {
				return &FieldError{field, v, "is required"}
			}
			return nil
		}
		if !re.MatchString(v) {
			return &FieldError{field, v, want}
		}
		return nil
	}
	checks := []error{
		match("role", s.Role, regexp.MustCompile(`^(serve|infer)$`), `must be "serve" or "infer"`, true),
		match("job name", s.JobName, reJobName, "may hold only letters, digits, '.', '_' and '-'", true),
		match("comment", s.Comment, reComment, "may hold only letters, digits, spaces and ._:=,/+@-", false),
		match("work directory", s.WorkDir, rePath, "must be an absolute path of letters, digits and ._/+@-", false),
		match("log directory", s.LogDir, rePath, "must be an absolute path of letters, digits and ._/+@-", false),
		match("partition", s.Partition, reNames, "must be partition names (letters, digits, ._-) separated by commas", false),
		match("account", s.Account, reName, "may hold only letters, digits, '.', '_' and '-'", false),
		match("qos", s.QoS, reName, "may hold only letters, digits, '.', '_' and '-'", false),
		match("time", s.Time, reTime, "must be MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS", false),
		match("memory", s.Memory, reMemory, "must be a number of megabytes, optionally with a K, M, G or T suffix (16G)", false),
		match("exclude", s.Exclude, reNodeList, "must be a node list (node[01-04],gpu7)", false),
		match("constraint", s.Constraint, reConstraint, "must be node features (letters, digits and &|,*[]():!)", false),
		match("gres", s.GRES, reGRES, "must be name[:type]:count entries separated by commas (gpu:a100:1)", false),
		match("signal", s.Signal, reSignal, "must be [B:]SIGNAL[@SECONDS] (B:TERM@120)", false),
		match("binary", s.Binary, regexp.MustCompile(`.`), "", true),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	if s.CPUs < 0 {
		return &FieldError{"cpus", fmt.Sprint(s.CPUs), "must not be negative"}
	}
	if s.ArraySize < 0 {
		return &FieldError{"array size", fmt.Sprint(s.ArraySize), "must not be negative"}
	}
	if s.ArraySize > 1 && s.Role != "infer" {
		return &FieldError{"array size", fmt.Sprint(s.ArraySize), "is for inference jobs only"}
	}
	for _, e := range s.Extra {
		if err := match("extra option", e, reExtra, "must be --option or --option=value with a value of letters, digits and ._,:/+@%=[]-", true); err != nil {
			return err
		}
	}
	for _, l := range s.Setup {
		if err := plain("setup line", l); err != nil {
			return err
		}
	}
	for _, e := range s.Env {
		if !reEnvName.MatchString(e.Name) {
			return &FieldError{"environment variable name", e.Name, "must match [A-Z_][A-Z0-9_]*"}
		}
		if err := plain("environment variable "+e.Name, e.Value); err != nil {
			return err
		}
	}
	for i, a := range s.Args {
		if err := plain(fmt.Sprintf("argument %d", i+1), a); err != nil {
			return err
		}
	}
	return nil
}
