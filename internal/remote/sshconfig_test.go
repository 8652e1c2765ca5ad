package remote

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSSHConfigLookup(t *testing.T) {
	home := isolate(t)
	t.Setenv("USER", "me")
	dir := filepath.Join(home, ".ssh")
	writeFile(t, filepath.Join(dir, "conf.d/10-cluster.conf"), `
Host cluster
    HostName login.cluster.example
    User alice
    IdentityFile ~/.ssh/id_cluster
`)
	writeFile(t, filepath.Join(dir, "conf.d/20-other.conf"), `
Host cluster other
    User bob
    Port 2200
`)
	writeFile(t, filepath.Join(dir, "inblock.conf"), `
Port 4444
Host *
    User included-star
`)
	main := writeFile(t, filepath.Join(dir, "config"), `
# global options apply to all
ConnectTimeout 7
Include conf.d/*.conf

Host gpu?
    HostName %h.gpu.example
    ProxyJump jump1,carol@jump2:2022
    IdentityFile=/keys/%r-%h-%p
    IdentitiesOnly yes

Host jump*
    HostName "bastion.example"
    Port 2022

Host *.internal !secret.internal
    User internal
    UserKnownHostsFile ~/.ssh/kh_internal /etc/kh_%h

Host inc
    Include inblock.conf

Match host foo
    User matched

Host quoted
    HostName = quoted.example # trailing comment

Host *
    User fallback
    IdentityFile ~/.ssh/id_default
    Port 22
    ProxyJump none
`)
	tests := []struct {
		alias string
		want  string // fmt of the interesting fields
	}{
		{"cluster", "host=login.cluster.example user=alice port=2200 ids=[~/.ssh/id_cluster ~/.ssh/id_default] jump=none kh=[] only=<nil> timeout=7s"},
		{"other", "host= user=bob port=2200 ids=[~/.ssh/id_default] jump=none kh=[] only=<nil> timeout=7s"},
		{"gpu1", "host=%h.gpu.example user=fallback port=22 ids=[/keys/%r-%h-%p ~/.ssh/id_default] jump=jump1,carol@jump2:2022 kh=[] only=true timeout=7s"},
		{"gpu12", "host= user=fallback port=22 ids=[~/.ssh/id_default] jump=none kh=[] only=<nil> timeout=7s"},
		{"jumpA", "host=bastion.example user=fallback port=2022 ids=[~/.ssh/id_default] jump=none kh=[] only=<nil> timeout=7s"},
		{"db.internal", "host= user=internal port=22 ids=[~/.ssh/id_default] jump=none kh=[~/.ssh/kh_internal /etc/kh_%h] only=<nil> timeout=7s"},
		{"secret.internal", "host= user=fallback port=22 ids=[~/.ssh/id_default] jump=none kh=[] only=<nil> timeout=7s"},
		{"inc", "host= user=included-star port=4444 ids=[~/.ssh/id_default] jump=none kh=[] only=<nil> timeout=7s"},
		{"foo", "host= user=fallback port=22 ids=[~/.ssh/id_default] jump=none kh=[] only=<nil> timeout=7s"},
		{"quoted", "host=quoted.example user=fallback port=22 ids=[~/.ssh/id_default] jump=none kh=[] only=<nil> timeout=7s"},
	}
	var logs []string
	r := &sshConfigReader{path: main, logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
	for _, tt := range tests {
		hc, err := r.lookup(tt.alias)
		if err != nil {
			t.Fatalf("%s: %v", tt.alias, err)
		}
		only := "<nil>"
		if hc.IdentitiesOnly != nil {
			only = fmt.Sprint(*hc.IdentitiesOnly)
		}
		got := fmt.Sprintf("host=%s user=%s port=%d ids=%v jump=%s kh=%v only=%s timeout=%v",
			hc.HostName, hc.User, hc.Port, hc.IdentityFiles, hc.ProxyJump, hc.UserKnownHostsFiles, only, hc.ConnectTimeout)
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.alias, got, tt.want)
		}
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "Match") {
		t.Errorf("warnings %q, want one about Match", logs)
	}
}

func TestSSHConfigErrorsAndMissing(t *testing.T) {
	dir := t.TempDir()
	r := &sshConfigReader{path: filepath.Join(dir, "absent")}
	if hc, err := r.lookup("x"); err != nil || hc.HostName != "" {
		t.Errorf("missing file: %+v, %v", hc, err)
	}
	for _, bad := range []string{"Port abc", "Host a\n  Port 70000", "HostName \"unterminated", "User", "ConnectTimeout soon"} {
		f := writeFile(t, filepath.Join(dir, "bad"), bad+"\n")
		if _, err := (&sshConfigReader{path: f}).lookup("a"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	loop := writeFile(t, filepath.Join(dir, "loop"), "Include "+filepath.Join(dir, "loop")+"\n")
	if _, err := (&sshConfigReader{path: loop}).lookup("a"); err == nil || !strings.Contains(err.Error(), "deeply") {
		t.Errorf("Include loop: %v", err)
	}
}

func TestResolveEndpoint(t *testing.T) {
	home := isolate(t)
	t.Setenv("USER", "me")
	conf := writeFile(t, filepath.Join(home, ".ssh/config"), `
Host c
  HostName login.%h.example
  User alice
  Port 2222
  IdentityFile ~/.ssh/id_%r_%p
  UserKnownHostsFile ~/kh
  ConnectTimeout 5
`)
	r := &sshConfigReader{path: conf}
	ep, _, err := resolveEndpoint(r, hop{Host: "c"}, SSHConfig{}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("{c login.c.example alice 2222 [%s/.ssh/id_alice_2222] true false [%s/kh] 5s}", home, home)
	if got := fmt.Sprint(ep); got != want {
		t.Errorf("config:\n got %s\nwant %s", got, want)
	}
	// Explicit fields win over the file.
	ep, _, err = resolveEndpoint(r, hop{Host: "c"}, SSHConfig{User: "bob", Port: 22, IdentityFiles: []string{"/k"}, KnownHostsFiles: []string{"/kh"}, ConnectTimeout: time.Second}, true)
	if err != nil {
		t.Fatal(err)
	}
	want = "{c login.c.example bob 22 [/k] true false [/kh] 1s}"
	if got := fmt.Sprint(ep); got != want {
		t.Errorf("overrides:\n got %s\nwant %s", got, want)
	}
	// A host the file does not know: defaults.
	ep, _, err = resolveEndpoint(r, hop{Host: "plain", User: "u", Port: 7}, SSHConfig{}, false)
	if err != nil {
		t.Fatal(err)
	}
	want = fmt.Sprintf("{plain plain u 7 [%[1]s/.ssh/id_ed25519 %[1]s/.ssh/id_ecdsa %[1]s/.ssh/id_rsa] false false [%[1]s/.ssh/known_hosts %[1]s/.ssh/known_hosts2] 30s}", home)
	if got := fmt.Sprint(ep); got != want {
		t.Errorf("defaults:\n got %s\nwant %s", got, want)
	}
}

func TestParseHopsAndPatterns(t *testing.T) {
	hops, err := splitProxyJump("a, bob@b:2200,[::1]:23,carol@[fe80::1],ssh://d")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(hops); got != "[{ a 0} {bob b 2200} { ::1 23} {carol fe80::1 0} { d 0}]" {
		t.Errorf("hops = %s", got)
	}
	for _, bad := range []string{"a:b", "@", "b:0", "[::1", "x,,y"} {
		if _, err := splitProxyJump(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if h, _ := splitProxyJump("none"); h != nil {
		t.Errorf("none: %v", h)
	}
	matches := []struct {
		patterns []string
		host     string
		want     bool
	}{
		{[]string{"*"}, "anything", true},
		{[]string{"a?c"}, "abc", true},
		{[]string{"a?c"}, "abbc", false},
		{[]string{"*.example"}, "x.EXAMPLE", true},
		{[]string{"*.example", "!bad.example"}, "bad.example", false},
		{[]string{"!bad.example"}, "good.example", false},
		{[]string{"a*b*c"}, "axxbyyc", true},
		{[]string{"a*b*c"}, "axxbyy", false},
		{[]string{"one,two"}, "two", true},
	}
	for _, m := range matches {
		if got := hostMatches(m.patterns, m.host); got != m.want {
			t.Errorf("hostMatches(%v, %s) = %v", m.patterns, m.host, got)
		}
	}
}
