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

// parseMoment reads a time given on the command line: RFC 3339, or a date (midnight UTC).
func parseMoment(flagName, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, command.Usagef("--%s %q: give a time as 2026-03-01T14:30:00Z (RFC 3339) or a date, 2026-03-01", flagName, s)
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
						if matches(p, q) {
							fmt.Fprintf(s.Out, "  %s\n", periodLine(p))
						}
					}
				}
				return nil
			}
		},
	}
}

// matches says whether period p is of the certificate or key q looks for. A certificate's
// key and a key's certificate match too: both periods are shown.
func matches(p registry.Period, q registry.FindQuery) bool {
	if len(q.CertSerial) != 0 {
		return string(p.Serial) == string(q.CertSerial)
	}
	return string(p.KeySHA256[:]) == string(q.KeySHA256)
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

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func keyName(id []byte, sha [32]byte) string {
	if len(id) > 0 {
		return hex.EncodeToString(id)
	}
	return "sha256:" + hex.EncodeToString(sha[:8])
}

// periodLine is one period as device show and find print it.
func periodLine(p registry.Period) string {
	var what string
	if p.Kind == registry.PeriodCertificate {
		what = fmt.Sprintf("certificate %s of %s", p.Serial, p.Issuer)
	} else {
		what = "key " + keyName(p.KeyID, p.KeySHA256)
		if len(p.Serial) > 0 {
			what += ", certified by " + p.Serial.String()
		}
	}
	switch {
	case p.EndedAt.IsZero() && !p.Until.IsZero():
		what += fmt.Sprintf("  valid %s until %s: current", stamp(p.From), stamp(p.Until))
	case p.EndedAt.IsZero():
		what += fmt.Sprintf("  in use since %s: current", stamp(p.From))
	default:
		what += fmt.Sprintf("  valid %s to %s: %s", stamp(p.From), stamp(p.EndedAt), p.Ended)
	}
	if p.RunID != "" {
		what += " (run " + p.RunID + ")"
	}
	return what
}

func printHistory(w io.Writer, h registry.DeviceHistory, now time.Time) {
	d := h.Device
	fmt.Fprintf(w, "device %s\n  model    %s\n", d.Serial, d.Model)
	if d.UDI != "" {
		fmt.Fprintf(w, "  udi      %s\n", d.UDI)
	}
	fmt.Fprintf(w, "  issuer   %s\n  status   %s\n  since    %s\n", d.IssuerID, d.Status, stamp(d.RegisteredAt))
	if !d.DecommissionedAt.IsZero() {
		fmt.Fprintf(w, "  retired  %s\n", stamp(d.DecommissionedAt))
	}
	for _, p := range h.Periods(now) {
		fmt.Fprintf(w, "  %s\n", periodLine(p))
	}
	for _, k := range h.Keys {
		fmt.Fprintf(w, "  key %s on %q, public key SHA-256 %x\n", keyName(k.KeyID, k.PublicKeySHA256), k.TokenLabel, k.PublicKeySHA256)
		for _, ch := range k.History {
			line := fmt.Sprintf("    %s  %s", stamp(ch.At), ch.State)
			if ch.RunID != "" {
				line += "  run " + ch.RunID
			}
			fmt.Fprintln(w, line)
		}
	}
	for _, r := range h.Results {
		fmt.Fprintf(w, "  run %s: %s by %s (%s)\n", r.RunID, r.Outcome, r.Method, strings.TrimSpace(r.Verification))
	}
}

// printDeviceAt says which certificates and keys the device had at one moment, and whether
// each certificate had been revoked as of then; a revocation made later whose invalidity
// date reaches back before the moment is named too.
func printDeviceAt(w io.Writer, d registry.DeviceAt, h registry.DeviceHistory) {
	status := string(d.Status)
	if status == "" {
		status = "not yet registered"
	}
	fmt.Fprintf(w, "device %s at %s: %s\n", d.Device.Serial, stamp(d.At), status)
	if len(d.Certificates) == 0 {
		fmt.Fprintln(w, "  no certificate yet")
	}
	for _, c := range d.Certificates {
		var standing string
		switch {
		case c.Revocation != nil:
			standing = fmt.Sprintf("revoked as of then (%s, on %s)", c.Revocation.Reason, stamp(c.Revocation.RevokedAt))
		case c.Certificate.NotAfter.Before(d.At):
			standing = "expired then (" + stamp(c.Certificate.NotAfter) + ")"
		default:
			standing = "valid then, not revoked as of then"
			for _, rv := range h.Revocations {
				if rv.IssuerID == c.Certificate.IssuerID && string(rv.Serial) == string(c.Certificate.Serial) {
					standing += fmt.Sprintf("; revoked later, on %s (%s)", stamp(rv.RevokedAt), rv.Reason)
					if !rv.InvalidityDate.IsZero() && !rv.InvalidityDate.After(d.At) {
						standing += ", with the key compromised since " + stamp(rv.InvalidityDate) + ", before this moment"
					}
				}
			}
		}
		fmt.Fprintf(w, "  certificate %s of %s: %s\n", c.Certificate.Serial, c.Certificate.IssuerID, standing)
	}
	for _, k := range d.Keys {
		fmt.Fprintf(w, "  key %s: %s then (since %s)\n", keyName(k.Key.KeyID, k.Key.PublicKeySHA256), k.State, stamp(k.Since))
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
			stamp(p.From), stamp(p.Until), stamp(p.EndedAt), p.Ended, p.RunID})
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
	doc := historyDoc{Device: historyDevice{Serial: d.Serial, Model: d.Model, UDI: d.UDI, Issuer: d.IssuerID, Status: string(d.Status),
		RegisteredAt: stamp(d.RegisteredAt), DecommissionedAt: stamp(d.DecommissionedAt)},
		Periods: []historyItem{}, KeyStates: []historyKey{}, Runs: []historyRun{}}
	for _, p := range h.Periods(now) {
		it := historyItem{Kind: string(p.Kind), Issuer: p.Issuer, Serial: p.Serial.String(), KeyID: hex.EncodeToString(p.KeyID),
			From: stamp(p.From), Until: stamp(p.Until), EndedAt: stamp(p.EndedAt), Ended: p.Ended, RunID: p.RunID}
		if p.KeySHA256 != ([32]byte{}) {
			it.KeySHA256 = hex.EncodeToString(p.KeySHA256[:])
		}
		doc.Periods = append(doc.Periods, it)
	}
	for _, k := range h.Keys {
		for _, ch := range k.History {
			doc.KeyStates = append(doc.KeyStates, historyKey{KeySHA256: hex.EncodeToString(k.PublicKeySHA256[:]), State: string(ch.State),
				At: stamp(ch.At), RunID: ch.RunID, Note: ch.Note})
		}
	}
	for _, r := range h.Results {
		hr := historyRun{RunID: r.RunID, Outcome: string(r.Outcome), Method: r.Method, Verification: r.Verification,
			RevokedAt: stamp(r.RevokedAt), InvalidityDate: stamp(r.InvalidityDate)}
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
