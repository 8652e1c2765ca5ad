package remote

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is a server whose host key is not trusted: unknown (not in known_hosts) or
// different from the one known_hosts records (refused: it may be an attack).
type HostKeyError struct {
	Unknown     bool
	Host        string // host:port as dialed
	Fingerprint string // SHA256:… of the key the server offered
	KeyType     string // ssh-ed25519, ecdsa-sha2-nistp256, …
	// KnownHostsFile is where the accept command should append (the first known_hosts file).
	KnownHostsFile string
	// Known lists the known_hosts lines (file:line) that hold other keys for the host.
	Known []string
	// KnownTypes are the key types of those lines.
	KnownTypes []string
}

func (e *HostKeyError) Error() string {
	host, port := splitHostPortDefault(e.Host)
	if e.Unknown {
		file := e.KnownHostsFile
		if file == "" {
			file = "~/.ssh/known_hosts"
		}
		return fmt.Sprintf("host key of %s is not known: the server offers %s key %s; "+
			"check this fingerprint with the cluster's documentation or administrators, then accept it with: "+
			"ssh-keyscan -p %d %s >> %s", e.Host, e.KeyType, e.Fingerprint, port, host, file)
	}
	differentType := len(e.KnownTypes) > 0 && !slices.Contains(e.KnownTypes, e.KeyType)
	if differentType {
		return fmt.Sprintf("host key of %s does not match known_hosts: the server offers %s key %s but %s records only %s keys for it; "+
			"refusing to connect (possibly an attack, or the server's keys changed: check with the administrators, then fix that line)",
			e.Host, e.KeyType, e.Fingerprint, strings.Join(e.Known, ", "), strings.Join(e.KnownTypes, ", "))
	}
	return fmt.Sprintf("HOST KEY OF %s HAS CHANGED: the server offers %s key %s, which differs from %s; "+
		"refusing to connect: this may be an attack (someone intercepting the connection), or the server was reinstalled. "+
		"Check with the administrators before removing that line (ssh-keygen -R)",
		e.Host, e.KeyType, e.Fingerprint, strings.Join(e.Known, ", "))
}

func splitHostPortDefault(hostport string) (string, int) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, 22
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return h, 22
	}
	return h, n
}

// existingFiles keeps the files that exist.
func existingFiles(files []string) []string {
	var out []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// hostKeyCallback verifies host keys strictly against the known_hosts files and turns
// knownhosts' errors into *HostKeyError.
func hostKeyCallback(files []string) (ssh.HostKeyCallback, error) {
	files = existingFiles(files)
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	first := ""
	if len(files) > 0 {
		first = files[0]
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			he := &HostKeyError{
				Unknown:        len(ke.Want) == 0,
				Host:           hostname,
				Fingerprint:    ssh.FingerprintSHA256(key),
				KeyType:        key.Type(),
				KnownHostsFile: first,
			}
			if first == "" {
				he.KnownHostsFile = "~/.ssh/known_hosts"
			}
			for _, w := range ke.Want {
				he.Known = append(he.Known, fmt.Sprintf("%s:%d", w.Filename, w.Line))
				if !slices.Contains(he.KnownTypes, w.Key.Type()) {
					he.KnownTypes = append(he.KnownTypes, w.Key.Type())
				}
			}
			return he
		}
		var re *knownhosts.RevokedError
		if errors.As(err, &re) {
			return fmt.Errorf("host key of %s (%s) is marked @revoked in %s:%d: refusing to connect",
				hostname, ssh.FingerprintSHA256(key), re.Revoked.Filename, re.Revoked.Line)
		}
		return err
	}, nil
}

// knownHostKeyTypes returns the key types that the known_hosts files record for hostport
// (host:port), in file order, reading plain and hashed (|1|salt|hash) entries. @revoked and
// @cert-authority lines are skipped.
func knownHostKeyTypes(files []string, hostport string) []string {
	host, port := splitHostPortDefault(hostport)
	name := knownhosts.Normalize(net.JoinHostPort(host, strconv.Itoa(port)))
	var types []string
	for _, f := range existingFiles(files) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 || strings.HasPrefix(fields[0], "#") {
				continue
			}
			if strings.HasPrefix(fields[0], "@") {
				continue
			}
			if !knownHostsPatternMatch(fields[0], name) {
				continue
			}
			keyType := fields[1]
			if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(fields[1] + " " + fields[2])); err == nil {
				keyType = pk.Type()
			}
			if !slices.Contains(types, keyType) {
				types = append(types, keyType)
			}
		}
	}
	return types
}

// knownHostsPatternMatch matches a known_hosts host field against a normalized name
// ("host" or "[host]:port").
func knownHostsPatternMatch(field, name string) bool {
	if strings.HasPrefix(field, "|1|") {
		parts := strings.Split(field[3:], "|")
		if len(parts) != 2 {
			return false
		}
		salt, err1 := base64.StdEncoding.DecodeString(parts[0])
		want, err2 := base64.StdEncoding.DecodeString(parts[1])
		if err1 != nil || err2 != nil {
			return false
		}
		mac := hmac.New(sha1.New, salt)
		mac.Write([]byte(name))
		return hmac.Equal(mac.Sum(nil), want)
	}
	// Plain: comma-separated patterns with * and ?, negation by !.
	return hostMatches([]string{field}, name)
}

// hostKeyAlgorithms orders the client's host key algorithms so that the types known_hosts
// records for the host come first (golang/go#29286: otherwise the server may present another
// type and the connection fails as a false "key mismatch"). Certificate algorithms are left
// out: host certificates are not verified.
func hostKeyAlgorithms(known []string) []string {
	var algos []string
	add := func(a string) {
		if !slices.Contains(algos, a) {
			algos = append(algos, a)
		}
	}
	for _, t := range known {
		switch t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		default:
			add(t)
		}
	}
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if strings.Contains(a, "-cert-") {
			continue
		}
		add(a)
	}
	return algos
}
