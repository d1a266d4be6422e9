package decommission

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// The sanitization categories of NIST SP 800-88 Rev. 2 (September 2025) a Custos erasure
// can count as. Cryptographic erase is a Purge technique only when no copy of the key can
// exist outside the key store; otherwise destroying this copy is a Clear of this medium.
const (
	Purge = "Purge"
	Clear = "Clear"
	// NotSanitized is what a device reached by no method of Custos is: its record says what
	// was attested, by whom, and claims no sanitization.
	NotSanitized = "not sanitized by Custos"
)

// identity is what the registry knows of a device's key identity: every certificate it
// registered for the device, and whether its key was generated on the key store by
// `custos device provision` or registered by `custos device import` from a certificate.
type identity struct {
	certs       []*x509.Certificate
	provisioned bool
}

// identityOf reads a device's identity from the registry.
func identityOf(ctx context.Context, env run.Env, serial string) (identity, error) {
	h, err := env.Registry.DeviceHistory(ctx, serial)
	if err != nil {
		return identity{}, fmt.Errorf("device %s: %w", serial, err)
	}
	var id identity
	for _, c := range h.Certificates {
		cert, err := x509.ParseCertificate(c.DER)
		if err != nil {
			return identity{}, fmt.Errorf("device %s: its registered certificate %s: %w", serial, c.Serial, err)
		}
		id.certs = append(id.certs, cert)
	}
	for _, k := range h.Keys {
		if len(k.KeyID) > 0 && k.TokenLabel != "" {
			id.provisioned = true
		}
	}
	return id, nil
}

func (id identity) origin() string {
	if id.provisioned {
		return "generated on the device's key store by custos device provision"
	}
	return "registered by custos device import from its certificate: Custos did not see the key made"
}

// classify says what an erasure of the objects found counts as under Rev. 2, and why: Purge
// when every private key of the identity found says it was generated on the key store
// (CKA_LOCAL) and could never leave it (CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, not
// CKA_EXTRACTABLE), so no copy of it can exist elsewhere; Clear otherwise, naming why a copy
// may exist.
func classify(found []hsm.IdentityObject, id identity) (category, copies string) {
	var privs []hsm.Object
	for _, o := range found {
		if o.Class == hsm.ClassPrivateKey {
			privs = append(privs, o.Object)
		}
	}
	if len(privs) == 0 {
		return Clear, "no private key of the identity was on the key store to read its attributes from, so Custos cannot say whether a copy of the key exists elsewhere"
	}
	var why []string
	for _, o := range privs {
		name := fmt.Sprintf("private key id %s", o.IDHex())
		if !o.Local {
			why = append(why, name+" was not generated on the key store (CKA_LOCAL false)")
		}
		if !o.NeverExtractable {
			why = append(why, name+" has been extractable (CKA_NEVER_EXTRACTABLE false)")
		}
		if !o.AlwaysSensitive {
			why = append(why, name+" has not always been sensitive (CKA_ALWAYS_SENSITIVE false)")
		}
		if o.Extractable {
			why = append(why, name+" is extractable (CKA_EXTRACTABLE true)")
		}
	}
	if len(why) > 0 {
		return Clear, "a copy of the key may exist elsewhere: " + strings.Join(why, "; ") + "; the key was " + id.origin()
	}
	which := "the private key was"
	if len(privs) > 1 {
		which = fmt.Sprintf("each of the %d private keys was", len(privs))
	}
	return Purge, fmt.Sprintf("no copy of the key can exist elsewhere: the key store says %s generated on it (CKA_LOCAL), has always been sensitive and never extractable (CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_EXTRACTABLE false); the registry says the key was %s",
		which, id.origin())
}

// objectsDestroyed describes the objects found for the journal, with the attributes of the
// private keys as read before they were destroyed.
func objectsDestroyed(found []hsm.IdentityObject) []ObjectDestroyed {
	out := make([]ObjectDestroyed, 0, len(found))
	for _, o := range found {
		d := ObjectDestroyed{Class: o.Class.String(), ID: o.ID, Label: o.Label, FoundBy: o.FoundBy}
		if o.Class == hsm.ClassPrivateKey {
			d.Local, d.NeverExtractable, d.AlwaysSensitive, d.Extractable = &o.Local, &o.NeverExtractable, &o.AlwaysSensitive, &o.Extractable
		}
		out = append(out, d)
	}
	return out
}

func searchesOf(ss []hsm.IdentitySearch) []Search {
	out := make([]Search, len(ss))
	for i, s := range ss {
		out[i] = Search{Search: s.Search, Found: s.Found}
	}
	return out
}

// attested is what a witness attests for a device Custos could not reach.
func attested(m Method) string {
	if m == Physical {
		return "the device was physically destroyed"
	}
	return "the device is lost or out of reach; its key may be known to someone"
}

// attestation is what a device nothing could be erased on is recorded as.
func attestation(m Method, witness string) string {
	return fmt.Sprintf("%s (%s): %s, attested by %s", NotSanitized, m, attested(m), witness)
}

func hasPrivateKey(found []hsm.IdentityObject) bool {
	for _, o := range found {
		if o.Class == hsm.ClassPrivateKey {
			return true
		}
	}
	return false
}

// erasedBefore finds the classification an earlier attempt at erasing the device journaled
// (a stopped run being resumed), when there is one.
func erasedBefore(r *run.Run, serial string) (Erased, bool) {
	var last Erased
	ok := false
	for _, e := range r.Journal.Entries() {
		if e.Step != stepErase.ID || len(e.Data) == 0 {
			continue
		}
		p, err := record.Decode[Erased](e)
		if err == nil && p.Serial == serial && p.Category != "" {
			last, ok = p, true
		}
	}
	return last, ok
}

// sanitizationOf reads what a single device's run did to its key store from the journal, for
// its record: the key store identified, the objects destroyed with their attributes, the
// category, and the searches made afterwards; or, for a device not reached, what was attested.
func sanitizationOf(entries []record.Entry, serial string) record.Sanitization {
	sz := record.Sanitization{Serial: serial}
	for _, e := range entries {
		if e.Status != record.StatusDone {
			continue
		}
		switch e.Step {
		case stepIdentify.ID:
			if p, err := record.Decode[Identified](e); err == nil {
				sz.KeyStore = []record.Field{{Name: "Manufacturer", Value: p.TokenManufacturer}, {Name: "Model", Value: p.TokenModel},
					{Name: "Serial", Value: p.TokenSerial}, {Name: "Firmware", Value: orUnknown(p.TokenFirmware)}, {Name: "Label", Value: p.Token}}
			}
		case stepErase.ID:
			if p, err := record.Decode[Erased](e); err == nil && p.Serial == serial {
				sz.Category, sz.Technique, sz.Copies = p.Category, p.Technique, p.Copies
				sz.Destroyed = sz.Destroyed[:0]
				for _, o := range p.Objects {
					sz.Destroyed = append(sz.Destroyed, record.ObjectRow{Class: o.Class, ID: hex.EncodeToString(o.ID), Label: o.Label,
						FoundBy: strings.Join(o.FoundBy, ", "), Attributes: keyAttributes(o)})
				}
			}
		case stepVerify.ID:
			if p, err := record.Decode[Verified](e); err == nil {
				sz.Verification = p.Verification
				sz.Searches = sz.Searches[:0]
				for _, s := range p.Searches {
					sz.Searches = append(sz.Searches, record.SearchRow{Search: s.Search, Found: s.Found})
				}
			}
		case stepAttest.ID:
			if p, err := record.Decode[Attested](e); err == nil {
				sz.Category, sz.Attested = NotSanitized, p.Attestation
			}
		}
	}
	if sz.Category == "" {
		sz.Category = orClear("")
	}
	return sz
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// keyAttributes says a private key's attributes as read before its destruction.
func keyAttributes(o ObjectDestroyed) string {
	if o.Local == nil {
		return ""
	}
	return fmt.Sprintf("CKA_LOCAL %t, CKA_NEVER_EXTRACTABLE %t, CKA_ALWAYS_SENSITIVE %t, CKA_EXTRACTABLE %t",
		*o.Local, *o.NeverExtractable, *o.AlwaysSensitive, *o.Extractable)
}
