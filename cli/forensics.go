package cli

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/registry"
)

// parseMoment reads a time given on the command line (registry.ParseMoment); a bad one is a
// usage error naming the flag.
func parseMoment(flagName, s string) (time.Time, error) {
	t, err := registry.ParseMoment(s)
	if err != nil {
		return time.Time{}, command.Usagef("--%s %q: give a time as 2026-03-01T14:30:00Z (RFC 3339) or a date, 2026-03-01", flagName, s)
	}
	return t, nil
}

// openDeviceHistory opens the workspace read-only and reads the history of device serial;
// done closes it.
func openDeviceHistory(ctx context.Context, ws, serial string) (*registry.Registry, registry.DeviceHistory, func(), error) {
	_, reg, done, err := registry.OpenWorkspaceReadOnly(ctx, ws)
	if errors.Is(err, registry.ErrEmptyWorkspace) {
		return nil, registry.DeviceHistory{}, nil, fmt.Errorf("device %s is not registered in this workspace (nothing has been done in it yet)", serial)
	}
	if err != nil {
		return nil, registry.DeviceHistory{}, nil, err
	}
	h, err := reg.DeviceHistory(ctx, serial)
	if errors.Is(err, registry.ErrNotFound) {
		done()
		return nil, registry.DeviceHistory{}, nil, fmt.Errorf("device %s is not registered in this workspace", serial)
	}
	if err != nil {
		done()
		return nil, registry.DeviceHistory{}, nil, err
	}
	return reg, h, done, nil
}

func deviceShow() command.Command {
	return command.Command{
		Name:    "device show",
		Args:    "SERIAL",
		Summary: "a device's certificates, key history and decommissioning, for forensics",
		Help: `Lists every certificate and key the device ever had, with the period each was valid and
how it ended (revoked, with the reason and invalidity date; expired; deactivated, compromised
or destroyed, and by which run). --at TIME says which key and certificate were valid at that
moment, and whether they had been revoked as of then.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			ws := command.WorkspaceFlag(fs)
			at := fs.String("at", "", "the device as it was at `TIME` (2026-03-01T14:30:00Z or 2026-03-01)")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if len(args) != 1 {
					return command.Usagef("name one device serial")
				}
				var moment time.Time
				if *at != "" {
					var err error
					if moment, err = parseMoment("at", *at); err != nil {
						return err
					}
				}
				reg, h, done, err := openDeviceHistory(ctx, *ws, args[0])
				if err != nil {
					return err
				}
				defer done()
				if *at == "" {
					printHistory(s.Out, h, time.Now())
					return nil
				}
				then, err := reg.DeviceAsOf(ctx, args[0], moment)
				if err != nil {
					return err
				}
				printDeviceAt(s.Out, then, h)
				return nil
			}
		},
	}
}

func deviceFind() command.Command {
	return command.Command{
		Name:    "device find",
		Summary: "which device had a certificate (--cert-serial HEX) or a key (--key-sha256 HEX), and when",
		Setup: func(fs *flag.FlagSet) command.Func {
			ws := command.WorkspaceFlag(fs)
			certSerial := fs.String("cert-serial", "", "a device certificate's serial, `HEX` as openssl prints it (colons allowed)")
			keySHA := fs.String("key-sha256", "", "a device key's public key SHA-256, `HEX` (64 digits)")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if (*certSerial == "") == (*keySHA == "") {
					return command.Usagef("give either --cert-serial or --key-sha256")
				}
				var q registry.FindQuery
				var err error
				if *certSerial != "" {
					if q.CertSerial, err = registry.ParseSerial(*certSerial); err != nil {
						return command.Usagef("--cert-serial: %v", err)
					}
				} else if q.KeySHA256, err = hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(*keySHA), ":", "")); err != nil || len(q.KeySHA256) != 32 {
					return command.Usagef("--key-sha256 %q: give the key's SHA-256 as 64 hex digits", *keySHA)
				}
				_, reg, done, err := registry.OpenWorkspaceReadOnly(ctx, *ws)
				if errors.Is(err, registry.ErrEmptyWorkspace) {
					return errors.New("no device has it: nothing has been done in this workspace yet")
				}
				if err != nil {
					return err
				}
				defer done()
				serials, err := reg.FindDevices(ctx, q)
				if err != nil {
					return err
				}
				if len(serials) == 0 {
					return errors.New("no device in this workspace has had it")
				}
				now := time.Now()
				for _, serial := range serials {
					h, err := reg.DeviceHistory(ctx, serial)
					if err != nil {
						return err
					}
					d := h.Device
					fmt.Fprintf(s.Out, "device %s (%s), %s\n", d.Serial, d.Model, d.Status)
					for _, p := range h.Periods(now) {
						if q.Matches(p) {
							fmt.Fprintf(s.Out, "  %s\n", p.Describe())
						}
					}
				}
				return nil
			}
		},
	}
}

func deviceHistoryCmd() command.Command {
	return command.Command{
		Name:    "device history",
		Args:    "SERIAL",
		Summary: "export a device's history (every certificate and key, when each served, how it ended) as JSON or CSV",
		Setup: func(fs *flag.FlagSet) command.Func {
			ws := command.WorkspaceFlag(fs)
			format := fs.String("format", "json", "`json` (the whole history) or csv (one line a certificate or key)")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if len(args) != 1 {
					return command.Usagef("name one device serial")
				}
				if *format != "json" && *format != "csv" {
					return command.Usagef("--format %q: use json or csv", *format)
				}
				_, h, done, err := openDeviceHistory(ctx, *ws, args[0])
				if err != nil {
					return err
				}
				defer done()
				if *format == "csv" {
					return writeHistoryCSV(s.Out, h, time.Now())
				}
				enc := json.NewEncoder(s.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(historyJSON(h, time.Now()))
			}
		},
	}
}

func printHistory(w io.Writer, h registry.DeviceHistory, now time.Time) {
	for i, line := range h.Describe(now) {
		if i > 0 {
			line = "  " + line
		}
		fmt.Fprintln(w, line)
	}
}

// printDeviceAt says which certificates and keys the device had at one moment (see
// registry.DeviceAt.Describe).
func printDeviceAt(w io.Writer, d registry.DeviceAt, h registry.DeviceHistory) {
	for i, line := range d.Describe(h.Revocations) {
		if i > 0 {
			line = "  " + line
		}
		fmt.Fprintln(w, line)
	}
}

var historyHeader = []string{"device", "kind", "issuer", "serial", "key_id", "key_sha256", "from", "until", "ended_at", "ended", "run_id"}

func writeHistoryCSV(w io.Writer, h registry.DeviceHistory, now time.Time) error {
	cw := csv.NewWriter(w)
	cw.Write(historyHeader)
	for _, p := range h.Periods(now) {
		sha := ""
		if p.KeySHA256 != ([32]byte{}) {
			sha = hex.EncodeToString(p.KeySHA256[:])
		}
		cw.Write([]string{h.Device.Serial, string(p.Kind), p.Issuer, p.Serial.String(), hex.EncodeToString(p.KeyID), sha,
			registry.Stamp(p.From), registry.Stamp(p.Until), registry.Stamp(p.EndedAt), p.Ended, p.RunID})
	}
	cw.Flush()
	return cw.Error()
}

// The JSON export: the device, its periods, every key state change and every run's result.
type (
	historyDoc struct {
		Device    historyDevice `json:"device"`
		Periods   []historyItem `json:"periods"`
		KeyStates []historyKey  `json:"key_states"`
		Runs      []historyRun  `json:"runs"`
	}
	historyDevice struct {
		Serial           string `json:"serial"`
		Model            string `json:"model"`
		UDI              string `json:"udi,omitempty"`
		Issuer           string `json:"issuer"`
		Status           string `json:"status"`
		RegisteredAt     string `json:"registered_at"`
		DecommissionedAt string `json:"decommissioned_at,omitempty"`
	}
	historyItem struct {
		Kind      string `json:"kind"`
		Issuer    string `json:"issuer,omitempty"`
		Serial    string `json:"serial,omitempty"`
		KeyID     string `json:"key_id,omitempty"`
		KeySHA256 string `json:"key_sha256,omitempty"`
		From      string `json:"from"`
		Until     string `json:"until,omitempty"`
		EndedAt   string `json:"ended_at,omitempty"`
		Ended     string `json:"ended,omitempty"`
		RunID     string `json:"run_id,omitempty"`
	}
	historyKey struct {
		KeySHA256 string `json:"key_sha256"`
		State     string `json:"state"`
		At        string `json:"at"`
		RunID     string `json:"run_id,omitempty"`
		Note      string `json:"note,omitempty"`
	}
	historyRun struct {
		RunID          string   `json:"run_id"`
		Outcome        string   `json:"outcome"`
		Method         string   `json:"method"`
		Reason         string   `json:"reason,omitempty"`
		Verification   string   `json:"verification,omitempty"`
		RevokedAt      string   `json:"revoked_at,omitempty"`
		InvalidityDate string   `json:"invalidity_date,omitempty"`
		Revoked        []string `json:"revoked_serials,omitempty"`
	}
)

func historyJSON(h registry.DeviceHistory, now time.Time) historyDoc {
	d := h.Device
	doc := historyDoc{Device: historyDevice{Serial: d.Serial, Model: d.Model, Issuer: d.IssuerID, Status: string(d.Status),
		RegisteredAt: registry.Stamp(d.RegisteredAt), DecommissionedAt: registry.Stamp(d.DecommissionedAt)},
		Periods: []historyItem{}, KeyStates: []historyKey{}, Runs: []historyRun{}}
	for _, p := range h.Periods(now) {
		it := historyItem{Kind: string(p.Kind), Issuer: p.Issuer, Serial: p.Serial.String(), KeyID: hex.EncodeToString(p.KeyID),
			From: registry.Stamp(p.From), Until: registry.Stamp(p.Until), EndedAt: registry.Stamp(p.EndedAt), Ended: p.Ended, RunID: p.RunID}
		if p.KeySHA256 != ([32]byte{}) {
			it.KeySHA256 = hex.EncodeToString(p.KeySHA256[:])
		}
		doc.Periods = append(doc.Periods, it)
	}
	for _, k := range h.Keys {
		for _, ch := range k.History {
			doc.KeyStates = append(doc.KeyStates, historyKey{KeySHA256: hex.EncodeToString(k.PublicKeySHA256[:]), State: string(ch.State),
				At: registry.Stamp(ch.At), RunID: ch.RunID, Note: ch.Note})
		}
	}
	for _, r := range h.Results {
		hr := historyRun{RunID: r.RunID, Outcome: string(r.Outcome), Method: r.Method, Verification: r.Verification,
			RevokedAt: registry.Stamp(r.RevokedAt), InvalidityDate: registry.Stamp(r.InvalidityDate)}
		if r.Outcome == registry.OutcomeDecommissioned {
			hr.Reason = r.Reason.String()
		}
		for _, s := range r.RevokedSerials {
			hr.Revoked = append(hr.Revoked, s.String())
		}
		doc.Runs = append(doc.Runs, hr)
	}
	return doc
}
