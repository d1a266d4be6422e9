package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"filippo.io/age"
	"filippo.io/age/plugin"
	"golang.org/x/term"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/run"
)

// custodianPINFiles is the repeatable --custodian-pin-file "NAME=FILE": the PIN of a
// custodian's own token, by the custodian's name (or the token's label).
type custodianPINFiles map[string]string

func (f custodianPINFiles) String() string { return "" }

func (f custodianPINFiles) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if name = strings.TrimSpace(name); !ok || name == "" || path == "" {
		return fmt.Errorf("%q: use \"NAME=FILE\", the custodian's name and the file holding their token's PIN", v)
	}
	if _, dup := f[name]; dup {
		return fmt.Errorf("%s's PIN file is given twice", name)
	}
	f[name] = path
	return nil
}

func addCustodianPINFiles(fs *flag.FlagSet) custodianPINFiles {
	f := custodianPINFiles{}
	fs.Var(f, "custodian-pin-file", "`\"NAME=FILE\"`: the PIN of custodian NAME's own token (mode 0600); repeat for each custodian; without it, the PIN is asked on the terminal")
	return f
}

// check refuses a PIN file that does not exist before anything is opened.
func (f custodianPINFiles) check() error {
	for _, p := range f {
		if err := command.ExistingFile(p); err != nil {
			return err
		}
	}
	return nil
}

// pin reads the PIN of the first of keys (a custodian's name, a token's label) that has a
// file, else asks on the terminal without echo. The caller zeroes it.
func (f custodianPINFiles) pin(s command.Streams, prompt string, keys ...string) ([]byte, error) {
	for _, k := range keys {
		if p, ok := f[k]; ok {
			return secret.ReadPINFile(p)
		}
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, command.Usagef("no --custodian-pin-file for %s, and no terminal to ask on", keys[0])
	}
	fmt.Fprintf(s.Err, "%s: ", prompt)
	pin, err := term.ReadPassword(fd)
	fmt.Fprintln(s.Err)
	if err != nil {
		return nil, err
	}
	if len(pin) == 0 {
		secret.Zero(pin)
		return nil, fmt.Errorf("no PIN was typed")
	}
	return pin, nil
}

// deliveries is the repeatable --deliver "NAME=DESTINATION" of a reshare: where a new
// custodian's share goes, as a plan's deliver says it (token:LABEL, age:RECIPIENT, dir:PATH);
// given twice for one custodian, age: and dir: together put the encrypted file in that folder.
type deliveries map[string][]string

func (d deliveries) String() string { return "" }

func (d deliveries) Set(v string) error {
	name, dest, ok := strings.Cut(v, "=")
	if name = strings.TrimSpace(name); !ok || name == "" || strings.TrimSpace(dest) == "" {
		return fmt.Errorf("%q: use \"NAME=DESTINATION\", a custodian's name and token:LABEL, age:RECIPIENT or dir:PATH", v)
	}
	d[name] = append(d[name], strings.TrimSpace(dest))
	return nil
}

func addDeliveries(fs *flag.FlagSet) deliveries {
	d := deliveries{}
	fs.Var(d, "deliver", "`\"NAME=DESTINATION\"`: where custodian NAME's share goes: token:LABEL (their own token, its PIN from --custodian-pin-file), age:RECIPIENT or dir:PATH; repeat for each custodian; without it, a file in --shares-dir")
	return d
}

// destinations is where each of custodians' shares goes, in their order, refusing a
// destination that does not parse or names nobody among them.
func (d deliveries) destinations(custodians []string) ([]ceremony.Destination, error) {
	out := make([]ceremony.Destination, len(custodians))
	for name, values := range d {
		i := slices.Index(custodians, name)
		if i < 0 {
			return nil, command.Usagef("--deliver names %q, who is not among --custodians", name)
		}
		dest, err := ceremony.ParseDestination(values...)
		if err != nil {
			return nil, command.Usagef("--deliver for %s: %v", name, err)
		}
		out[i] = dest
	}
	return out, nil
}

// identityFiles is the repeatable --identity FILE: age identity files for .share.age shares.
type identityFiles []string

func (f *identityFiles) String() string { return strings.Join(*f, ",") }
func (f *identityFiles) Set(v string) error {
	*f = append(*f, v)
	return nil
}

func addIdentityFiles(fs *flag.FlagSet) *identityFiles {
	f := &identityFiles{}
	fs.Var(f, "identity", "age identity `FILE` (mode 0600) that decrypts .share.age shares: an X25519 or plugin identity; repeatable")
	return f
}

// read parses every identity file; a plugin speaks to the custodian on stderr.
func (f identityFiles) read(s command.Streams) ([]age.Identity, error) {
	ui := &plugin.ClientUI{
		DisplayMessage: func(name, msg string) error { fmt.Fprintf(s.Err, "age-plugin-%s: %s\n", name, msg); return nil },
		WaitTimer:      func(name string) { fmt.Fprintf(s.Err, "waiting for age-plugin-%s (touch the token?)\n", name) },
	}
	var ids []age.Identity
	for _, p := range f {
		if err := command.ExistingFile(p); err != nil {
			return nil, err
		}
		got, err := ceremony.ParseIdentityFile(p, ui)
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

// readSources reads each share source for v's quorum; a source that cannot be read is
// returned with its error, for the caller to refuse or report. The caller zeroes the texts.
func readSources(ctx context.Context, s command.Streams, env run.Env, v *ceremony.VerifiedQuorum, srcs []ceremony.ShareSource, ids []age.Identity, pins custodianPINFiles) []ceremony.ShareInput {
	holder := tokenHolders(ctx, env, v)
	keys := ceremony.ShareKeys{Identities: ids, PIN: func(ctx context.Context, token string) ([]byte, error) {
		name := holder[token]
		if name == "" {
			name = token
		}
		return pins.pin(s, fmt.Sprintf("PIN of %s's token %s", name, token), name, token)
	}}
	var out []ceremony.ShareInput
	for _, src := range srcs {
		text, err := v.ReadShare(ctx, env, src, keys)
		out = append(out, ceremony.ShareInput{Source: src.String(), Text: text, Err: err})
	}
	return out
}

// tokenHolders names the custodian whose share the registry says went to each token, so the
// PIN is asked of them by name (the share read is checked against the signed commitments
// whatever the registry says).
func tokenHolders(ctx context.Context, env run.Env, v *ceremony.VerifiedQuorum) map[string]string {
	out := map[string]string{}
	q, err := env.Registry.Quorum(ctx, v.Statement.Root)
	if err != nil {
		return out
	}
	for _, sh := range q.Shares {
		if label, ok := strings.CutPrefix(sh.Destination, "token:"); ok {
			out[label] = sh.Custodian
		}
	}
	return out
}
