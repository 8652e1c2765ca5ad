package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes one YAML document into v, rejecting unknown keys. It returns the
// document's root mapping node (for line numbers) and every problem found, each with its
// line. The node is nil when the file could not be decoded at all.
func decodeStrict(data []byte, v any) (*yaml.Node, []lineMsg) {
	return decodeStrictDoc(data, v, "empty file; a registry file holds one entry, starting with id: <file name>")
}

// decodeStrictDoc is decodeStrict with the message given for an empty file.
func decodeStrictDoc(data []byte, v any, emptyMsg string) (*yaml.Node, []lineMsg) {
	var doc yaml.Node
	nodes := yaml.NewDecoder(bytes.NewReader(data))
	if err := nodes.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []lineMsg{{0, emptyMsg}}
		}
		return nil, yamlErrors(err)
	}
	var extra yaml.Node
	if err := nodes.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, yamlErrors(err)
		}
		return nil, []lineMsg{{line, "more than one YAML document (---); put one entry per file"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, []lineMsg{{root.Line, fmt.Sprintf("expected a mapping of keys (id: …, …), found %s", nodeKindName(root))}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return root, yamlErrors(err)
	}
	return root, nil
}

// lineMsg is a problem inside one file.
type lineMsg struct {
	line int
	msg  string
}

var (
	reLinePrefix = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	reUnknownKey = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
)

// yamlErrors turns a yaml.v3 error into problems with lines, rewording unknown keys.
func yamlErrors(err error) []lineMsg {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []lineMsg
	for _, m := range msgs {
		line := 0
		if sub := reLinePrefix.FindStringSubmatch(m); sub != nil {
			line, _ = strconv.Atoi(sub[1])
			m = sub[2]
		}
		m = strings.TrimPrefix(m, "yaml: ")
		if sub := reUnknownKey.FindStringSubmatch(m); sub != nil {
			m = unknownKeyMsg(sub[1], sub[2])
		}
		out = append(out, lineMsg{line, m})
	}
	return out
}

// knownKeys maps a Go type name as yaml.v3 prints it ("registry.Task") to its YAML keys.
var knownKeys = func() map[string][]string {
	m := map[string][]string{}
	for _, v := range []any{Task{}, Source{}, Suite{}, Prompt{}, Model{}, Published{},
		Clusters{}, Cluster{}, ClusterGPU{}, ClusterCPU{}, ClusterPoll{},
		SweepConfig{}, SweepModel{}, RunConfig{}} {
		t := reflect.TypeOf(v)
		var keys []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				keys = append(keys, name)
			}
		}
		m[t.String()] = keys
	}
	return m
}()

func unknownKeyMsg(key, typeName string) string {
	keys := knownKeys[typeName]
	if len(keys) == 0 {
		return fmt.Sprintf("unknown key %q", key)
	}
	if s := suggest(key, keys, 1); len(s) > 0 {
		return fmt.Sprintf("unknown key %q; did you mean %s? (known keys: %s)", key, s[0], strings.Join(keys, ", "))
	}
	return fmt.Sprintf("unknown key %q (known keys: %s)", key, strings.Join(keys, ", "))
}

func nodeKindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the scalar %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	default:
		return "nothing"
	}
}

// lineOf returns the line of the value at path (map keys as strings, list indexes as ints)
// under n, or the line of the deepest part of the path that exists.
func lineOf(n *yaml.Node, path ...any) int {
	if n == nil {
		return 0
	}
	line := n.Line
	for _, p := range path {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch k := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			i := 0
			for ; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					break
				}
			}
			if i+1 >= len(n.Content) {
				return line
			}
			keyLine := n.Content[i].Line
			n = n.Content[i+1]
			line = n.Line
			if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
				line = keyLine // a block mapping or list starts below its key: point at the key
			}
		case int:
			if n.Kind != yaml.SequenceNode || k < 0 || k >= len(n.Content) {
				return line
			}
			n = n.Content[k]
			line = n.Line
		}
	}
	return line
}

// decodeFile decodes one configuration file (clusters.yaml, a sweep or run config) strictly
// into v and validates it. Every problem found is reported in one *LoadError whose problems
// name origin and whose message starts with what (e.g. "clusters").
func decodeFile[T any](data []byte, origin, what, emptyMsg string, v *T, validate func(*T, *yaml.Node, reportFunc)) error {
	var ps problems
	node, msgs := decodeStrictDoc(data, v, emptyMsg)
	decoded := map[int]bool{}
	for _, lm := range msgs {
		ps.add(origin, lm.line, "%s", lm.msg)
		decoded[lm.line] = true
	}
	if node != nil && validate != nil {
		validate(v, node, func(line int, format string, args ...any) {
			if !decoded[line] {
				ps.add(origin, line, format, args...)
			}
		})
	}
	if err := ps.err(); err != nil {
		le := err.(*LoadError)
		le.what = what
		return le
	}
	return nil
}
