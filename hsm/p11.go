//go:build cgo && !nopkcs11

package hsm

import "github.com/miekg/pkcs11"

// p11 is the part of *pkcs11.Ctx this package uses. Every call goes through it so that a
// test can put a fault-injecting layer (faulty) between this package and the module.
type p11 interface {
	GetInfo() (pkcs11.Info, error)
	GetSlotList(tokenPresent bool) ([]uint, error)
	GetSlotInfo(slotID uint) (pkcs11.SlotInfo, error)
	GetTokenInfo(slotID uint) (pkcs11.TokenInfo, error)
	GetMechanismList(slotID uint) ([]*pkcs11.Mechanism, error)
	GetMechanismInfo(slotID uint, m []*pkcs11.Mechanism) (pkcs11.MechanismInfo, error)
	InitToken(slotID uint, pin string, label string) error
	InitPIN(sh pkcs11.SessionHandle, pin string) error
	SetPIN(sh pkcs11.SessionHandle, oldpin string, newpin string) error
	OpenSession(slotID uint, flags uint) (pkcs11.SessionHandle, error)
	CloseSession(sh pkcs11.SessionHandle) error
	GetSessionInfo(sh pkcs11.SessionHandle) (pkcs11.SessionInfo, error)
	Login(sh pkcs11.SessionHandle, userType uint, pin string) error
	Logout(sh pkcs11.SessionHandle) error
	CreateObject(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	DestroyObject(sh pkcs11.SessionHandle, oh pkcs11.ObjectHandle) error
	GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) ([]*pkcs11.Attribute, error)
	FindObjectsInit(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) error
	FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error)
	FindObjectsFinal(sh pkcs11.SessionHandle) error
	SignInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Sign(sh pkcs11.SessionHandle, message []byte) ([]byte, error)
	GenerateKeyPair(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, public, private []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error)
	WrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, wrappingkey, key pkcs11.ObjectHandle) ([]byte, error)
	UnwrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, unwrappingkey pkcs11.ObjectHandle, wrappedkey []byte, a []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	GenerateRandom(sh pkcs11.SessionHandle, length int) ([]byte, error)
}

var _ p11 = (*pkcs11.Ctx)(nil)

// faulty asks fault before every call and returns its error instead of making the call.
type faulty struct {
	next  p11
	fault Fault
}

func (f faulty) GetInfo() (pkcs11.Info, error) {
	if err := f.fault("C_GetInfo"); err != nil {
		return pkcs11.Info{}, err
	}
	return f.next.GetInfo()
}

func (f faulty) GetSlotList(tokenPresent bool) ([]uint, error) {
	if err := f.fault("C_GetSlotList"); err != nil {
		return nil, err
	}
	return f.next.GetSlotList(tokenPresent)
}

func (f faulty) GetSlotInfo(slotID uint) (pkcs11.SlotInfo, error) {
	if err := f.fault("C_GetSlotInfo"); err != nil {
		return pkcs11.SlotInfo{}, err
	}
	return f.next.GetSlotInfo(slotID)
}

func (f faulty) GetTokenInfo(slotID uint) (pkcs11.TokenInfo, error) {
	if err := f.fault("C_GetTokenInfo"); err != nil {
		return pkcs11.TokenInfo{}, err
	}
	return f.next.GetTokenInfo(slotID)
}

func (f faulty) GetMechanismList(slotID uint) ([]*pkcs11.Mechanism, error) {
	if err := f.fault("C_GetMechanismList"); err != nil {
		return nil, err
	}
	return f.next.GetMechanismList(slotID)
}

func (f faulty) GetMechanismInfo(slotID uint, m []*pkcs11.Mechanism) (pkcs11.MechanismInfo, error) {
	if err := f.fault("C_GetMechanismInfo"); err != nil {
		return pkcs11.MechanismInfo{}, err
	}
	return f.next.GetMechanismInfo(slotID, m)
}

func (f faulty) InitToken(slotID uint, pin string, label string) error {
	if err := f.fault("C_InitToken"); err != nil {
		return err
	}
	return f.next.InitToken(slotID, pin, label)
}

func (f faulty) InitPIN(sh pkcs11.SessionHandle, pin string) error {
	if err := f.fault("C_InitPIN"); err != nil {
		return err
	}
	return f.next.InitPIN(sh, pin)
}

func (f faulty) SetPIN(sh pkcs11.SessionHandle, oldpin string, newpin string) error {
	if err := f.fault("C_SetPIN"); err != nil {
		return err
	}
	return f.next.SetPIN(sh, oldpin, newpin)
}

func (f faulty) OpenSession(slotID uint, flags uint) (pkcs11.SessionHandle, error) {
	if err := f.fault("C_OpenSession"); err != nil {
		return 0, err
	}
	return f.next.OpenSession(slotID, flags)
}

func (f faulty) CloseSession(sh pkcs11.SessionHandle) error {
	if err := f.fault("C_CloseSession"); err != nil {
		return err
	}
	return f.next.CloseSession(sh)
}

func (f faulty) GetSessionInfo(sh pkcs11.SessionHandle) (pkcs11.SessionInfo, error) {
	if err := f.fault("C_GetSessionInfo"); err != nil {
		return pkcs11.SessionInfo{}, err
	}
	return f.next.GetSessionInfo(sh)
}

func (f faulty) Login(sh pkcs11.SessionHandle, userType uint, pin string) error {
	if err := f.fault("C_Login"); err != nil {
		return err
	}
	return f.next.Login(sh, userType, pin)
}

func (f faulty) Logout(sh pkcs11.SessionHandle) error {
	if err := f.fault("C_Logout"); err != nil {
		return err
	}
	return f.next.Logout(sh)
}

func (f faulty) CreateObject(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	if err := f.fault("C_CreateObject"); err != nil {
		return 0, err
	}
	return f.next.CreateObject(sh, temp)
}

func (f faulty) DestroyObject(sh pkcs11.SessionHandle, oh pkcs11.ObjectHandle) error {
	if err := f.fault("C_DestroyObject"); err != nil {
		return err
	}
	return f.next.DestroyObject(sh, oh)
}

func (f faulty) GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) ([]*pkcs11.Attribute, error) {
	if err := f.fault("C_GetAttributeValue"); err != nil {
		return nil, err
	}
	return f.next.GetAttributeValue(sh, o, a)
}

func (f faulty) FindObjectsInit(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) error {
	if err := f.fault("C_FindObjectsInit"); err != nil {
		return err
	}
	return f.next.FindObjectsInit(sh, temp)
}

func (f faulty) FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error) {
	if err := f.fault("C_FindObjects"); err != nil {
		return nil, false, err
	}
	return f.next.FindObjects(sh, max)
}

func (f faulty) FindObjectsFinal(sh pkcs11.SessionHandle) error {
	if err := f.fault("C_FindObjectsFinal"); err != nil {
		return err
	}
	return f.next.FindObjectsFinal(sh)
}

func (f faulty) SignInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error {
	if err := f.fault("C_SignInit"); err != nil {
		return err
	}
	return f.next.SignInit(sh, m, o)
}

func (f faulty) Sign(sh pkcs11.SessionHandle, message []byte) ([]byte, error) {
	if err := f.fault("C_Sign"); err != nil {
		return nil, err
	}
	return f.next.Sign(sh, message)
}

func (f faulty) GenerateKeyPair(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, public, private []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error) {
	if err := f.fault("C_GenerateKeyPair"); err != nil {
		return 0, 0, err
	}
	return f.next.GenerateKeyPair(sh, m, public, private)
}

func (f faulty) WrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, wrappingkey, key pkcs11.ObjectHandle) ([]byte, error) {
	if err := f.fault("C_WrapKey"); err != nil {
		return nil, err
	}
	return f.next.WrapKey(sh, m, wrappingkey, key)
}

func (f faulty) UnwrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, unwrappingkey pkcs11.ObjectHandle, wrappedkey []byte, a []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	if err := f.fault("C_UnwrapKey"); err != nil {
		return 0, err
	}
	return f.next.UnwrapKey(sh, m, unwrappingkey, wrappedkey, a)
}

func (f faulty) GenerateRandom(sh pkcs11.SessionHandle, length int) ([]byte, error) {
	if err := f.fault("C_GenerateRandom"); err != nil {
		return nil, err
	}
	return f.next.GenerateRandom(sh, length)
}
