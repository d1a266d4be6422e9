package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/custos-pki/custos/workspace"
)

// OpenWorkspace opens and locks the workspace folder dir (workspace.DefaultDir when dir is
// empty) and opens its registry: the one way every front end and the demo open a workspace
// to work in it (OpenWorkspaceReadOnly, to only read it). Close the registry, then the
// workspace.
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
	if err := Lost(ws); err != nil {
		ws.Close()
		return nil, nil, err
	}
	reg, err := Open(ctx, ws.DBPath())
	if err != nil {
		ws.Close()
		return nil, nil, err
	}
	return ws, reg, nil
}

// ErrEmptyWorkspace is OpenWorkspaceReadOnly's error for a workspace where nothing has been
// done yet (no folder, or neither registry nor journal): a command that lists prints its
// empty list.
var ErrEmptyWorkspace = errors.New("nothing has been done in this workspace yet")

// OpenWorkspaceReadOnly opens the workspace in dir (the default one when dir is empty) and its
// registry for a command that only reads them: it creates and changes nothing, so it works on
// write-protected media and beside a Custos at work (see workspace.OpenReadOnly). A workspace
// that holds journals but no registry is refused: its registry was lost, and an empty list
// would hide that. closeAll releases both.
func OpenWorkspaceReadOnly(ctx context.Context, dir string) (ws *workspace.Workspace, reg *Registry, closeAll func(), err error) {
	if dir == "" {
		if dir, err = workspace.DefaultDir(); err != nil {
			return nil, nil, nil, err
		}
	}
	if ws, err = workspace.OpenReadOnly(dir); err != nil {
		if errors.Is(err, workspace.ErrNoWorkspace) {
			err = fmt.Errorf("%w (%v)", ErrEmptyWorkspace, err)
		}
		return nil, nil, nil, err
	}
	if reg, err = OpenReadOnly(ctx, ws.DBPath(), ws.NoWriter()); err != nil {
		if errors.Is(err, ErrNoRegistry) {
			if lost := Lost(ws); lost != nil {
				err = lost
			} else {
				err = fmt.Errorf("%w (%v)", ErrEmptyWorkspace, err)
			}
		}
		ws.Close()
		return nil, nil, nil, err
	}
	return ws, reg, func() { reg.Close(); ws.Close() }, nil
}

// ErrRegistryLost is the refusal of a workspace whose registry is gone while its journals
// remain: it was deleted or moved, and a new, empty registry would hide every root, device and
// run the journals record. The way out is to rebuild it from the journals.
var ErrRegistryLost = errors.New("the workspace's registry is lost")

// Lost says whether the registry of ws is lost: ErrRegistryLost, naming the folder and how
// many journals it holds, when custos.db does not exist and journals do; nil otherwise.
func Lost(ws *workspace.Workspace) error {
	if _, err := os.Lstat(ws.DBPath()); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	journals, _ := filepath.Glob(ws.Path(workspace.JournalDir, "*.jsonl"))
	if len(journals) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s holds run journals (%d) but no registry (%s): it was deleted or moved; rebuild it from the journals",
		ErrRegistryLost, ws.Dir, len(journals), filepath.Base(ws.DBPath()))
}
