package remote

import (
	"bufio"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// hostConfig is what an ssh_config file says about one host, after OpenSSH's rules: the first
// value of a keyword wins, except IdentityFile which accumulates. Empty fields were not set.
type hostConfig struct {
	HostName            string
	User                string
	Port                int
	IdentityFiles       []string // as written (tokens and ~ not expanded)
	IdentitiesOnly      *bool
	ProxyJump           string
	UserKnownHostsFiles []string
	ConnectTimeout      time.Duration
}

// sshConfigReader reads an ssh_config file (and its Includes) and resolves one host at a time.
type sshConfigReader struct {
	path string
	logf func(format string, args ...any)
	seen map[string]bool // warnings already given
}

func (r *sshConfigReader) warnf(key, format string, args ...any) {
	if r.logf == nil || r.seen[key] {
		return
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[key] = true
	r.logf(format, args...)
}

// lookup resolves alias through the config file. A missing file gives an empty config.
func (r *sshConfigReader) lookup(alias string) (hostConfig, error) {
	var hc hostConfig
	set := map[string]bool{}
	if r.path == "" {
		return hc, nil
	}
	err := r.readFile(r.path, alias, &hc, set, 0)
	return hc, err
}

const maxIncludeDepth = 16

func (r *sshConfigReader) readFile(path, alias string, hc *hostConfig, set map[string]bool, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("ssh config %s: Include nested too deeply", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) { // no file is an empty file, as for ssh
			return nil
		}
		return fmt.Errorf("ssh config: %w", err)
	}
	active := true // lines before the first Host apply to every host
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		key, args, err := splitConfigLine(sc.Text())
		if err != nil {
			return fmt.Errorf("%s:%d: %v", path, lineNo, err)
		}
		if key == "" {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, lineNo)
		switch key {
		case "host":
			active = hostMatches(args, alias)
			continue
		case "match":
			r.warnf(where, "ssh config %s: Match blocks are not supported; ignoring the block (use `ssh -G` to check, or the system ssh transport)", where)
			active = false
			continue
		}
		if !active {
			continue
		}
		if key == "include" {
			for _, pat := range args {
				pat = expandTilde(pat)
				if !filepath.IsAbs(pat) {
					pat = filepath.Join(filepath.Dir(path), pat)
				}
				files, err := filepath.Glob(pat)
				if err != nil {
					return fmt.Errorf("%s: Include %q: %v", where, pat, err)
				}
				for _, f := range files {
					if err := r.readFile(f, alias, hc, set, depth+1); err != nil {
						return err
					}
				}
			}
			continue
		}
		if len(args) == 0 {
			return fmt.Errorf("%s: %s needs a value", where, key)
		}
		if key == "identityfile" { // accumulates
			hc.IdentityFiles = append(hc.IdentityFiles, args[0])
			continue
		}
		if set[key] {
			continue // first value wins
		}
		switch key {
		case "hostname":
			hc.HostName = args[0]
		case "user":
			hc.User = args[0]
		case "port":
			p, err := strconv.Atoi(args[0])
			if err != nil || p <= 0 || p > 65535 {
				return fmt.Errorf("%s: bad Port %q", where, args[0])
			}
			hc.Port = p
		case "proxyjump":
			hc.ProxyJump = strings.Join(args, ",")
		case "userknownhostsfile":
			hc.UserKnownHostsFiles = args
		case "identitiesonly":
			b := strings.EqualFold(args[0], "yes")
			hc.IdentitiesOnly = &b
		case "connecttimeout":
			s, err := strconv.Atoi(args[0])
			if err != nil || s < 0 {
				return fmt.Errorf("%s: bad ConnectTimeout %q", where, args[0])
			}
			hc.ConnectTimeout = time.Duration(s) * time.Second
		case "proxycommand":
			r.warnf("proxycommand", "ssh config %s: ProxyCommand is not supported by the built-in SSH client; use the system ssh transport", where)
		}
		set[key] = true
	}
	return sc.Err()
}

// splitConfigLine splits an ssh_config line into a lower-case keyword and its arguments
// (`Key value`, `Key=value`, double quotes group words). Comments and blank lines give "".
func splitConfigLine(line string) (string, []string, error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", nil, nil
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return strings.ToLower(line), nil, nil
	}
	key := strings.ToLower(line[:i])
	rest := strings.TrimLeft(line[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	var args []string
	for rest != "" {
		if rest[0] == '"' {
			j := strings.IndexByte(rest[1:], '"')
			if j < 0 {
				return "", nil, fmt.Errorf("unterminated quote")
			}
			args = append(args, rest[1:1+j])
			rest = strings.TrimLeft(rest[2+j:], " \t")
			continue
		}
		if rest[0] == '#' { // trailing comment
			break
		}
		j := strings.IndexAny(rest, " \t")
		if j < 0 {
			args = append(args, rest)
			break
		}
		args = append(args, rest[:j])
		rest = strings.TrimLeft(rest[j:], " \t")
	}
	return key, args, nil
}

// hostMatches applies a Host line's patterns: a negated pattern that matches excludes the
// host; otherwise any matching positive pattern includes it.
func hostMatches(patterns []string, host string) bool {
	host = strings.ToLower(host)
	matched := false
	for _, p := range patterns {
		for _, p := range strings.Split(p, ",") {
			neg := strings.HasPrefix(p, "!")
			if neg {
				p = p[1:]
			}
			if p == "" || !wildcardMatch(strings.ToLower(p), host) {
				continue
			}
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}

// wildcardMatch matches s against a pattern with * (any run) and ? (one character).
func wildcardMatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if wildcardMatch(pattern, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		}
	}
	return s == ""
}

func homeDir() string {
	h, err := os.UserHomeDir()
	if err != nil {
		return "/"
	}
	return h
}

func expandTilde(p string) string {
	if p == "~" {
		return homeDir()
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(homeDir(), p[2:])
	}
	return p
}

func localUserName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// expandTokens expands the ssh_config tokens %% %h %p %r %u %d %n and a leading ~.
func expandTokens(s, alias, host string, port int, remoteUser string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'h':
			b.WriteString(host)
		case 'n':
			b.WriteString(alias)
		case 'p':
			b.WriteString(strconv.Itoa(port))
		case 'r':
			b.WriteString(remoteUser)
		case 'u':
			b.WriteString(localUserName())
		case 'd':
			b.WriteString(homeDir())
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return expandTilde(b.String())
}

// hop is one ProxyJump entry: [user@]host[:port].
type hop struct {
	User string
	Host string
	Port int
}

// parseHop parses [user@]host[:port] (IPv6 hosts in brackets).
func parseHop(s string) (hop, error) {
	var h hop
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "ssh://") {
		s = strings.TrimPrefix(s, "ssh://")
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		h.User, s = s[:i], s[i+1:]
	}
	switch {
	case strings.HasPrefix(s, "["):
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return h, fmt.Errorf("bad host %q", s)
		}
		h.Host = s[1:j]
		rest := s[j+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return h, fmt.Errorf("bad host %q", s)
			}
			p, err := strconv.Atoi(rest[1:])
			if err != nil || p <= 0 || p > 65535 {
				return h, fmt.Errorf("bad port in %q", s)
			}
			h.Port = p
		}
	case strings.Count(s, ":") == 1:
		i := strings.IndexByte(s, ':')
		p, err := strconv.Atoi(s[i+1:])
		if err != nil || p <= 0 || p > 65535 {
			return h, fmt.Errorf("bad port in %q", s)
		}
		h.Host, h.Port = s[:i], p
	default:
		h.Host = s
	}
	if h.Host == "" {
		return h, fmt.Errorf("empty host in %q", s)
	}
	return h, nil
}

// splitProxyJump splits a ProxyJump value into hops; "none" and "" give none.
func splitProxyJump(s string) ([]hop, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return nil, nil
	}
	var hops []hop
	for _, part := range strings.Split(s, ",") {
		h, err := parseHop(part)
		if err != nil {
			return nil, fmt.Errorf("ProxyJump %q: %v", s, err)
		}
		hops = append(hops, h)
	}
	return hops, nil
}
