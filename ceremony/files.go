package ceremony

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"

	"github.com/custos-pki/custos/workspace"
)

// writeCertPEM writes a certificate under certs/, never overwriting.
func writeCertPEM(ws *workspace.Workspace, name string, c *x509.Certificate) (string, error) {
	path := ws.Path(workspace.CertsDir, name)
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	if err := workspace.CreateExclusive(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return path, nil
}
