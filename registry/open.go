package registry

import (
	"context"

	"github.com/custos-pki/custos/workspace"
)

// OpenWorkspace opens and locks the workspace folder dir (workspace.DefaultDir when dir is
// empty) and opens its registry: the one way every front end, the demo and the auditor's
// verifier open a workspace. Close the registry, then the workspace.
func OpenWorkspace(ctx context.Context, dir string) (*workspace.Workspace, *Registry, error) {
	if dir == "" {
		d, err := workspace.DefaultDir()
		if err != nil {
			return nil, nil, err
		}
		dir = d
	}
	ws, err := workspace.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	reg, err := Open(ctx, ws.DBPath())
	if err != nil {
		ws.Close()
		return nil, nil, err
	}
	return ws, reg, nil
}
