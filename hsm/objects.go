//go:build cgo && !nopkcs11

package hsm

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

var classCKO = map[Class]uint{
	ClassPrivateKey:  pkcs11.CKO_PRIVATE_KEY,
	ClassPublicKey:   pkcs11.CKO_PUBLIC_KEY,
	ClassSecretKey:   pkcs11.CKO_SECRET_KEY,
	ClassCertificate: pkcs11.CKO_CERTIFICATE,
	ClassData:        pkcs11.CKO_DATA,
}

func (q Match) template() []*pkcs11.Attribute {
	var t []*pkcs11.Attribute
	if q.Class != AnyClass {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_CLASS, classCKO[q.Class]))
	}
	if len(q.ID) > 0 {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ID, q.ID))
	}
	if q.Label != "" {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_LABEL, q.Label))
	}
	return t
}

// Objects lists every object the session can see: public objects always, private ones
// only while the user is logged in.
func (s *Session) Objects(ctx context.Context) ([]Object, error) {
	return s.Find(ctx, Match{})
}

// Find lists the objects that match q.
func (s *Session) Find(ctx context.Context, q Match) ([]Object, error) {
	op := "find " + q.String()
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.find(ctx, op, q)
}

func (s *Session) find(ctx context.Context, op string, q Match) ([]Object, error) {
	hs, err := s.findHandles(op, q.template())
	if err != nil {
		return nil, err
	}
	objs := make([]Object, 0, len(hs))
	for _, h := range hs {
		if err := s.next(ctx, op); err != nil {
			return nil, err
		}
		o, err := s.readObject(op, h)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// findOne finds the one object matching q, failing when there is none or several.
func (s *Session) findOne(ctx context.Context, op string, q Match) (Object, error) {
	objs, err := s.find(ctx, op, q)
	if err != nil {
		return Object{}, err
	}
	switch len(objs) {
	case 1:
		return objs[0], nil
	case 0:
		hint := "nothing on the token matches " + q.String()
		if q.Class == ClassPrivateKey || q.Class == ClassSecretKey || q.Class == ClassData {
			hint += " (private objects are visible only after user login)"
		}
		return Object{}, failf(op, s.label, ErrObjectNotFound, "%s", hint)
	}
	return Object{}, failf(op, s.label, errors.New("more than one object matches"), "%d objects match %s: name it by both id and label", len(objs), q)
}

// findHandles runs one C_FindObjects search. It always ends the search, even on error, so
// the session is left ready for the next operation.
func (s *Session) findHandles(op string, template []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := s.m.p.FindObjectsInit(s.h, template); err != nil {
		return nil, s.fail(op, err)
	}
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := s.m.p.FindObjects(s.h, 100)
		if err != nil {
			_ = s.m.p.FindObjectsFinal(s.h)
			return nil, s.fail(op, err)
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	if err := s.m.p.FindObjectsFinal(s.h); err != nil {
		return nil, s.fail(op, err)
	}
	return all, nil
}

// attributes reads the attributes types of object h, by type. An attribute the object does
// not have, or keeps secret, is left out of the map: modules differ in which optional
// attributes they keep (tpm2-pkcs11 has no CKA_TRUSTED on certificates), and PKCS#11 then
// fails the whole read, so the types are asked for one by one.
func (s *Session) attributes(op string, h pkcs11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	t := make([]*pkcs11.Attribute, len(types))
	for i, typ := range types {
		t[i] = pkcs11.NewAttribute(typ, nil)
	}
	got, err := s.m.p.GetAttributeValue(s.h, h, t)
	if c := code(err); len(types) > 1 && (c == pkcs11.CKR_ATTRIBUTE_TYPE_INVALID || c == pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
		got, err = nil, nil
		for _, typ := range types {
			one, err := s.m.p.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
			switch c := code(err); {
			case err == nil:
				got = append(got, one...)
			case c == pkcs11.CKR_ATTRIBUTE_TYPE_INVALID || c == pkcs11.CKR_ATTRIBUTE_SENSITIVE:
			default:
				return nil, s.fail(op, err)
			}
		}
	}
	if err != nil {
		return nil, s.fail(op, err)
	}
	out := make(map[uint][]byte, len(got))
	for _, a := range got {
		out[a.Type] = a.Value
	}
	return out, nil
}

func (s *Session) readObject(op string, h pkcs11.ObjectHandle) (Object, error) {
	a, err := s.attributes(op, h, pkcs11.CKA_CLASS, pkcs11.CKA_TOKEN, pkcs11.CKA_PRIVATE, pkcs11.CKA_LABEL)
	if err != nil {
		return Object{}, err
	}
	o := Object{
		Label:   string(a[pkcs11.CKA_LABEL]),
		Token:   boolAttr(a[pkcs11.CKA_TOKEN]),
		Private: boolAttr(a[pkcs11.CKA_PRIVATE]),
		handle:  uint(h),
	}
	cko := ulongAttr(a[pkcs11.CKA_CLASS])
	for c, v := range classCKO {
		if v == cko {
			o.Class = c
		}
	}
	// Each class has its own attributes, and asking for one a class lacks fails the whole
	// read, so ask each class only for its own.
	var more []uint
	switch o.Class {
	case ClassPrivateKey:
		more = []uint{pkcs11.CKA_ID, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE,
			pkcs11.CKA_ALWAYS_SENSITIVE, pkcs11.CKA_NEVER_EXTRACTABLE, pkcs11.CKA_WRAP_WITH_TRUSTED, pkcs11.CKA_LOCAL}
	case ClassSecretKey:
		more = []uint{pkcs11.CKA_ID, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE,
			pkcs11.CKA_ALWAYS_SENSITIVE, pkcs11.CKA_NEVER_EXTRACTABLE, pkcs11.CKA_WRAP_WITH_TRUSTED, pkcs11.CKA_TRUSTED}
	case ClassPublicKey:
		more = []uint{pkcs11.CKA_ID, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_TRUSTED}
	case ClassCertificate:
		more = []uint{pkcs11.CKA_ID, pkcs11.CKA_TRUSTED}
	case ClassData:
		more = []uint{pkcs11.CKA_APPLICATION}
	}
	if len(more) == 0 {
		return o, nil
	}
	b, err := s.attributes(op, h, more...)
	if err != nil {
		return Object{}, err
	}
	o.ID = b[pkcs11.CKA_ID]
	if kt, ok := b[pkcs11.CKA_KEY_TYPE]; ok {
		o.KeyType = keyTypeName(ulongAttr(kt))
	}
	o.Application = string(b[pkcs11.CKA_APPLICATION])
	o.Sensitive = boolAttr(b[pkcs11.CKA_SENSITIVE])
	o.Extractable = boolAttr(b[pkcs11.CKA_EXTRACTABLE])
	o.AlwaysSensitive = boolAttr(b[pkcs11.CKA_ALWAYS_SENSITIVE])
	o.NeverExtractable = boolAttr(b[pkcs11.CKA_NEVER_EXTRACTABLE])
	o.WrapWithTrusted = boolAttr(b[pkcs11.CKA_WRAP_WITH_TRUSTED])
	o.Trusted = boolAttr(b[pkcs11.CKA_TRUSTED])
	o.Local = boolAttr(b[pkcs11.CKA_LOCAL])
	return o, nil
}

func keyTypeName(k uint) string {
	switch k {
	case pkcs11.CKK_RSA:
		return "RSA"
	case pkcs11.CKK_EC:
		return "EC"
	case ckkECEdwards:
		return "EC_EDWARDS"
	case pkcs11.CKK_AES:
		return "AES"
	case pkcs11.CKK_GENERIC_SECRET:
		return "GENERIC_SECRET"
	case pkcs11.CKK_DSA:
		return "DSA"
	case pkcs11.CKK_DES3:
		return "DES3"
	}
	return fmt.Sprintf("0x%X", k)
}

func boolAttr(v []byte) bool { return len(v) > 0 && v[0] != 0 }

// ulongAttr reads a CK_ULONG attribute, which the module writes in the machine's own byte
// order and width.
func ulongAttr(v []byte) uint {
	switch len(v) {
	case 8:
		return uint(binary.NativeEndian.Uint64(v))
	case 4:
		return uint(binary.NativeEndian.Uint32(v))
	}
	return ^uint(0)
}

// Destroy destroys every object matching q and returns how many it destroyed. It refuses
// the zero Match: to erase a whole token, re-initialise it (Module.ReinitToken).
func (s *Session) Destroy(ctx context.Context, q Match) (int, error) {
	op := "destroy " + q.String()
	if q.Class == AnyClass && len(q.ID) == 0 && q.Label == "" {
		return 0, failf(op, s.label, errors.New("refusing to destroy every object"), "name a class, id or label; re-initialise the token to erase it all")
	}
	if err := s.begin(ctx, op); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	hs, err := s.findHandles(op, q.template())
	if err != nil {
		return 0, err
	}
	for i, h := range hs {
		if err := s.next(ctx, op); err != nil {
			return i, err
		}
		if err := s.m.p.DestroyObject(s.h, h); err != nil {
			return i, s.fail(op, err)
		}
	}
	return len(hs), nil
}

// DestroyObject destroys one object found by Find or Objects.
func (s *Session) DestroyObject(ctx context.Context, o Object) error {
	op := "destroy " + o.String()
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.fail(op, s.m.p.DestroyObject(s.h, pkcs11.ObjectHandle(o.handle)))
}

// Remaining lists every object, of any class, whose id is id or whose label is label
// (either may be empty, not both). An empty result after Destroy is the proof of erasure
// a destruction record cites; the user should be logged in so that private objects are
// seen too.
func (s *Session) Remaining(ctx context.Context, id []byte, label string) ([]Object, error) {
	op := "look for remaining objects"
	if len(id) == 0 && label == "" {
		return nil, failf(op, s.label, errors.New("no id or label given"), "name the id or label whose objects should be gone")
	}
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var objs []Object
	seen := map[uint]bool{}
	for _, q := range []Match{{ID: id}, {Label: label}} {
		if len(q.ID) == 0 && q.Label == "" {
			continue
		}
		found, err := s.find(ctx, op, q)
		if err != nil {
			return nil, err
		}
		for _, o := range found {
			if !seen[o.handle] {
				seen[o.handle] = true
				objs = append(objs, o)
			}
		}
	}
	return objs, nil
}

// StoreCertificate stores cert on the token as a public X.509 certificate object with the
// given CKA_ID (usually its key's) and label.
func (s *Session) StoreCertificate(ctx context.Context, cert *x509.Certificate, id []byte, label string) error {
	op := fmt.Sprintf("store certificate %q", label)
	serial, err := asn1.Marshal(cert.SerialNumber)
	if err != nil {
		return failf(op, s.label, err, "the certificate's serial number cannot be encoded")
	}
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	_, err = s.m.p.CreateObject(s.h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE),
		pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, cert.RawSubject),
		pkcs11.NewAttribute(pkcs11.CKA_ISSUER, cert.RawIssuer),
		pkcs11.NewAttribute(pkcs11.CKA_SERIAL_NUMBER, serial),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, cert.Raw),
	})
	return s.fail(op, err)
}

// Certificate reads back the one certificate matching q (its Class is ignored).
func (s *Session) Certificate(ctx context.Context, q Match) (*x509.Certificate, error) {
	q.Class = ClassCertificate
	op := "read " + q.String()
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	o, err := s.findOne(ctx, op, q)
	if err != nil {
		return nil, err
	}
	a, err := s.attributes(op, pkcs11.ObjectHandle(o.handle), pkcs11.CKA_VALUE)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(a[pkcs11.CKA_VALUE])
	if err != nil {
		return nil, failf(op, s.label, err, "the certificate object holds no valid X.509 certificate")
	}
	return cert, nil
}

// StoreData stores d on the token.
func (s *Session) StoreData(ctx context.Context, d DataObject) error {
	op := fmt.Sprintf("store data object %q", d.Label)
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	_, err := s.m.p.CreateObject(s.h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, d.Private),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, d.Application),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, d.Label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, d.Value),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, !d.ReadOnly),
	})
	if err != nil && !d.Private && code(err) == pkcs11.CKR_ATTRIBUTE_VALUE_INVALID {
		e := s.fail(op, err).(*Error)
		e.Hint = "this token refuses public data objects (tpm2-pkcs11 does): store the object private, readable after user login"
		return e
	}
	return s.fail(op, err)
}

// Data reads back the one data object with this application and label. Private data
// objects are found only while the user is logged in. The caller zeroes Value when it is
// secret.
func (s *Session) Data(ctx context.Context, application, label string) (DataObject, error) {
	op := fmt.Sprintf("read data object %q", label)
	if err := s.begin(ctx, op); err != nil {
		return DataObject{}, err
	}
	defer s.mu.Unlock()
	hs, err := s.findHandles(op, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, application),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	})
	if err != nil {
		return DataObject{}, err
	}
	switch len(hs) {
	case 0:
		return DataObject{}, failf(op, s.label, ErrObjectNotFound, "no data object of application %q is labelled %q (private objects are visible only after user login)", application, label)
	case 1:
	default:
		return DataObject{}, failf(op, s.label, errors.New("more than one object matches"), "%d data objects of application %q are labelled %q", len(hs), application, label)
	}
	a, err := s.attributes(op, hs[0], pkcs11.CKA_VALUE, pkcs11.CKA_PRIVATE)
	if err != nil {
		return DataObject{}, err
	}
	return DataObject{Application: application, Label: label, Value: a[pkcs11.CKA_VALUE], Private: boolAttr(a[pkcs11.CKA_PRIVATE])}, nil
}
