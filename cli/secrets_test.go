package cli

import (
	"bytes"
	"compress/zlib"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/vault/shamir"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/quorum"
)

// findSecrets reconstructs every quorum secret from the share files in shareDirs, derives the
// PINs and KEKs as DESIGN.md says, and searches every file under workspace (PDF streams
// inflated) and output for them, for every share (raw, encoded and as typed groups) and for
// the PINs given. It returns one line per secret found, and what it searched.
func findSecrets(shareDirs []string, pins [][]byte, workspace string, output []byte) (found []string, searched string, err error) {
	var needles [][]byte
	add := func(secret []byte) {
		needles = append(needles, secret, []byte(hex.EncodeToString(secret)), []byte(strings.ToUpper(hex.EncodeToString(secret))),
			[]byte(base64.StdEncoding.EncodeToString(secret)), []byte(base64.RawURLEncoding.EncodeToString(secret)))
	}
	for _, dir := range shareDirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.share"))
		if len(files) == 0 {
			return nil, "", fmt.Errorf("%s holds no share files", dir)
		}
		var parts [][]byte
		for _, f := range files {
			text, err := ceremony.ReadShareFile(f)
			if err != nil {
				return nil, "", err
			}
			sh, err := quorum.ParseShare(ceremony.StripShareComments(string(text)))
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", f, err)
			}
			add(sh.Bytes)
			// Two neighbouring groups, however they are separated: a lone group of five
			// characters turns up by chance in uppercase hex, a pair does not.
			groups := sh.Groups()
			for i := 0; i+1 < len(groups); i++ {
				for _, sep := range []string{"-", " ", "\n", ""} {
					needles = append(needles, []byte(groups[i]+sep+groups[i+1]))
				}
			}
			parts = append(parts, sh.Bytes)
		}
		s, err := shamir.Combine(parts)
		if err != nil {
			return nil, "", err
		}
		add(s)
		for label, n := range map[string]int{"custos/v1/root-token/so-pin": 16, "custos/v1/root-token/user-pin": 16,
			"custos/v1/operations-token/so-pin": 16, "custos/v1/backup-kek": 32} {
			k, _ := hkdf.Key(sha256.New, s, []byte("acme-root-2026"), label, n)
			add(k)
		}
	}
	for _, p := range pins {
		add(p)
	}
	haystacks := map[string][]byte{"command output": output}
	err = filepath.WalkDir(workspace, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			haystacks[p] = append(data, inflatePDFStreams(data)...)
		}
		return err
	})
	if err != nil {
		return nil, "", err
	}
	for where, hay := range haystacks {
		for _, n := range needles {
			if len(n) >= 5 && bytes.Contains(hay, n) {
				found = append(found, fmt.Sprintf("%s contains a secret (%q…)", where, n[:5]))
			}
		}
	}
	return found, fmt.Sprintf("%d files and the output for %d secret forms", len(haystacks)-1, len(needles)), nil
}

// inflatePDFStreams returns the inflated content of every Flate stream in a PDF, so a secret
// inside a compressed page or attachment is found too.
func inflatePDFStreams(data []byte) []byte {
	var out []byte
	for rest := data; ; {
		i := bytes.Index(rest, []byte("stream"))
		if i < 0 {
			return out
		}
		rest = rest[i+len("stream"):]
		rest = bytes.TrimLeft(rest, "\r\n")
		if r, err := zlib.NewReader(bytes.NewReader(rest)); err == nil {
			b, _ := io.ReadAll(r)
			out = append(out, b...)
		}
	}
}
