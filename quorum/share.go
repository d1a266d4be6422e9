package quorum

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/custos-pki/custos/internal/secret"
)

// A share as a custodian copies it by hand:
//
//	custos-share acme-root-2026 #2 epoch 1
//	7K2QF-0M9ZB-...            (19 groups of 5 characters)
//
// The groups carry, in Crockford base32, a body of 46 bytes: format version, the first 4
// bytes of SHA-256 of the ceremony id, epoch, share number, threshold, the 33-byte Shamir
// share and a 4-byte checksum over all of it. Each group is 4 data characters and a check
// character (a position-weighted sum mod 37 that includes the group's index), so a single
// mistyped character, two swapped neighbours or two swapped groups are caught in the group
// where they are, and the whole-share checksum catches anything else. The checksums catch
// mistakes, not forgeries: that is the commitment's job (Share.Commitment), and it covers
// every field the share carries.

// Versions 2 and 3 of the format have the same layout as version 1. The commitment of
// version 2 also covers the threshold and the version; that of version 3 also the root
// certificate the shares were made for. An older share is refused by its version, not by a
// commitment that no longer matches.
const (
	shareVersion   = 3
	shareLen       = SecretLen + 1 // shamir.Split of the secret: its bytes and the x coordinate
	shareBodyLen   = 1 + 4 + 2 + 1 + 1 + shareLen + 4
	groupData      = 4
	shareHeaderTag = "custos-share"
)

// ShareGroups is how many groups of GroupLen characters a share has, for a screen that takes
// one group per field.
const ShareGroups = (shareBodyLen*8 + 5*groupData - 1) / (5 * groupData)

// GroupLen is how many characters a share group has: its data and its check character.
const GroupLen = groupData + 1

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U" // 32 digits, then check symbols 32..36

// Share is one custodian's share of a quorum secret. Bytes is secret: whoever holds the
// Share (ParseShare's and Split's caller) zeroes it with Wipe.
type Share struct {
	CeremonyID string
	// RootSHA256 is the SHA-256 of the root certificate the share was made for. The share's
	// text does not carry it (a custodian copies no more than needed); its commitment covers
	// it, so a share is checked against the root it belongs to (Split and a Collector set it).
	RootSHA256 []byte
	Epoch      int
	Number     int
	Threshold  int
	Bytes      []byte

	idHash [4]byte // from a parsed share: the ceremony it was made for
}

// ShareError says what is wrong with a typed share, and in which group when one is to blame.
type ShareError struct {
	Group  int // 1-based group with the error, 0 when the share as a whole is wrong
	Groups int
	Msg    string
}

func (e *ShareError) Error() string {
	if e.Group > 0 {
		return fmt.Sprintf("share group %d of %d is wrong: %s", e.Group, e.Groups, e.Msg)
	}
	return "share: " + e.Msg
}

// Encode writes the share for a person: a header line naming the ceremony, the share and the
// epoch, and a line of groups.
func (s Share) Encode() string {
	return fmt.Sprintf("%s %s #%d epoch %d\n%s", shareHeaderTag, s.CeremonyID, s.Number, s.Epoch,
		JoinGroups(s.Groups()))
}

// JoinGroups is a share's line of groups, as Encode writes it and ParseShare reads it: for a
// screen that takes one group per field.
func JoinGroups(groups []string) string { return strings.Join(groups, "-") }

// SplitEncoded takes an encoded share (Encode's text) apart into its header line and its
// groups, for a screen that shows them one by one.
func SplitEncoded(text string) (header string, groups []string) {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) > 1 {
		header = strings.TrimSpace(lines[0])
	}
	return header, strings.Split(strings.TrimSpace(lines[len(lines)-1]), "-")
}

// Groups are the share's check-carrying groups of five characters.
func (s Share) Groups() []string {
	body := make([]byte, 0, shareBodyLen)
	idh := sha256.Sum256([]byte(s.CeremonyID))
	body = append(body, shareVersion)
	body = append(body, idh[:4]...)
	body = binary.BigEndian.AppendUint16(body, uint16(s.Epoch))
	body = append(body, byte(s.Number), byte(s.Threshold))
	body = append(body, s.Bytes...)
	sum := sha256.Sum256(body)
	body = append(body, sum[:4]...)
	defer secret.Zero(body)
	return groupsOf(body)
}

// groupsOf writes a share's body as groups, each with its check character.
func groupsOf(body []byte) []string {
	digits := toBase32(body)
	defer secret.Zero(digits)
	groups := make([]string, ShareGroups)
	for g := range groups {
		var b strings.Builder
		for _, d := range digits[g*groupData : (g+1)*groupData] {
			b.WriteByte(crockford[d])
		}
		b.WriteByte(crockford[groupCheck(g, digits[g*groupData:(g+1)*groupData])])
		groups[g] = b.String()
	}
	return groups
}

// toBase32 splits b into 5-bit digits, zero-padded to whole groups.
func toBase32(b []byte) []byte {
	digits := make([]byte, ShareGroups*groupData)
	for i := range digits {
		var v byte
		for k := 0; k < 5; k++ {
			bit := i*5 + k
			v <<= 1
			if bit/8 < len(b) && b[bit/8]&(0x80>>(bit%8)) != 0 {
				v |= 1
			}
		}
		digits[i] = v
	}
	return digits
}

func fromBase32(digits []byte) []byte {
	b := make([]byte, shareBodyLen)
	for i := 0; i < shareBodyLen*8; i++ {
		if digits[i/5]&(0x10>>(i%5)) != 0 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	return b
}

// groupCheck is the check digit of group g: weights 1..4 are non-zero mod the prime 37, so
// any single substitution changes it, and distinct weights catch swapped neighbours.
func groupCheck(g int, digits []byte) byte {
	sum := 7 * (g + 1)
	for i, d := range digits {
		sum += (i + 1) * int(d)
	}
	return byte(sum % 37)
}

// normalise reads a group as people write it: case-insensitive, O for 0, I and L for 1.
func normalise(s string) string {
	s = strings.ToUpper(s)
	return strings.NewReplacer("O", "0", "I", "1", "L", "1").Replace(s)
}

// CheckGroup checks one typed group (1-based index) by its check character, so a screen can
// mark each group right or wrong as it is typed.
func CheckGroup(index int, text string) error {
	d, err := decodeGroup(index-1, text)
	secret.Zero(d)
	return err
}

func decodeGroup(g int, text string) ([]byte, error) {
	t := normalise(strings.TrimSpace(text))
	if g < 0 || g >= ShareGroups {
		return nil, &ShareError{Msg: fmt.Sprintf("a share has %d groups, not %d", ShareGroups, g+1)}
	}
	if len(t) != groupData+1 {
		return nil, &ShareError{Group: g + 1, Groups: ShareGroups, Msg: fmt.Sprintf("%d characters where %d belong", len([]rune(t)), GroupLen)}
	}
	digits := make([]byte, groupData)
	for i := 0; i < groupData; i++ {
		v := strings.IndexByte(crockford[:32], t[i])
		if v < 0 {
			return nil, &ShareError{Group: g + 1, Groups: ShareGroups, Msg: fmt.Sprintf("character %d (%q) is not used in shares", i+1, t[i])}
		}
		digits[i] = byte(v)
	}
	c := strings.IndexByte(crockford, t[groupData])
	if c < 0 || byte(c) != groupCheck(g, digits) {
		return nil, &ShareError{Group: g + 1, Groups: ShareGroups, Msg: "its check character does not match: a character in it is mistyped"}
	}
	return digits, nil
}

// ParseShare reads a share as typed or read from a file: the header line is optional, groups
// may be separated by spaces, dashes or new lines. Every group is checked, and the first
// wrong one is named. The share's CeremonyID is set only from a header line; without one,
// the share still knows a hash of its ceremony id, which a Collector checks. The caller
// owns the returned share's Bytes.
func ParseShare(text string) (Share, error) {
	var header string
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) > 0 && strings.HasPrefix(strings.TrimSpace(lines[0]), shareHeaderTag) {
		header, lines = strings.TrimSpace(lines[0]), lines[1:]
	}
	fields := strings.FieldsFunc(strings.Join(lines, " "), func(r rune) bool {
		return r == ' ' || r == '-' || r == '\t' || r == '\r'
	})
	if len(fields) != ShareGroups {
		return Share{}, &ShareError{Msg: fmt.Sprintf("%d groups where %d belong", len(fields), ShareGroups)}
	}
	digits := make([]byte, 0, ShareGroups*groupData)
	defer secret.Zero(digits[:cap(digits)])
	for g, f := range fields {
		d, err := decodeGroup(g, f)
		if err != nil {
			return Share{}, err
		}
		digits = append(digits, d...)
		secret.Zero(d)
	}
	body := fromBase32(digits)
	defer secret.Zero(body)
	sum := sha256.Sum256(body[:shareBodyLen-4])
	if !bytes.Equal(sum[:4], body[shareBodyLen-4:]) {
		return Share{}, &ShareError{Msg: "the share's checksum does not match: two groups may be swapped or a group is missing"}
	}
	if body[0] != shareVersion {
		return Share{}, &ShareError{Msg: fmt.Sprintf("format version %d; this Custos reads version %d", body[0], shareVersion)}
	}
	s := Share{
		Epoch:     int(binary.BigEndian.Uint16(body[5:7])),
		Number:    int(body[7]),
		Threshold: int(body[8]),
		Bytes:     append([]byte(nil), body[9:9+shareLen]...),
	}
	if header != "" {
		id, n, e, err := parseHeader(header)
		if err != nil {
			return Share{}, err
		}
		idh := sha256.Sum256([]byte(id))
		if !bytes.Equal(idh[:4], body[1:5]) || n != s.Number || e != s.Epoch {
			return Share{}, &ShareError{Msg: fmt.Sprintf("the header line %q does not match the groups below it", header)}
		}
		s.CeremonyID = id
	}
	s.idHash = [4]byte(body[1:5])
	return s, nil
}

func parseHeader(h string) (id string, number, epoch int, err error) {
	f := strings.Fields(h)
	if len(f) != 5 || f[0] != shareHeaderTag || !strings.HasPrefix(f[2], "#") || f[3] != "epoch" {
		return "", 0, 0, &ShareError{Msg: fmt.Sprintf("header line %q is not \"custos-share ID #N epoch E\"", h)}
	}
	number, err1 := strconv.Atoi(f[2][1:])
	epoch, err2 := strconv.Atoi(f[4])
	if err1 != nil || err2 != nil {
		return "", 0, 0, &ShareError{Msg: fmt.Sprintf("header line %q has a bad share number or epoch", h)}
	}
	return f[1], number, epoch, nil
}

// belongsTo says whether the share was made for the ceremony id.
func (s Share) belongsTo(ceremonyID string) bool {
	h := sha256.Sum256([]byte(ceremonyID))
	return s.idHash == [4]byte(h[:4])
}

// Wipe zeroes the share's secret bytes.
func (s *Share) Wipe() { secret.Zero(s.Bytes) }
