package providers

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// GroupName is what a cloud calls the security group (and, before kumo
// named key pairs by their key, the key pair) of a run's unit group.
func GroupName(run, group string) string { return "kumo-" + run + "-" + group }

// KeyPairName names the cloud key pair that holds a unit group's key: the
// group's name and a short fingerprint of the key. A group deleted and
// made again has a new key, so it never finds the old key pair under its
// name and launches nodes that reject it (a destroy cut short before
// deleting the key pair left just that behind).
func KeyPairName(run, group, publicKey string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(publicKey)))
	return GroupName(run, group) + "-" + hex.EncodeToString(sum[:4])
}

// IsGroupKeyPair reports whether a cloud key pair called name belongs to
// the unit group, under the current key or an earlier one.
func IsGroupKeyPair(name, run, group string) bool {
	g := GroupName(run, group)
	if name == g {
		return true
	}
	fp, ok := strings.CutPrefix(name, g+"-")
	if !ok || len(fp) != 8 {
		return false
	}
	_, err := hex.DecodeString(fp)
	return err == nil
}
