package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
)

// sshKey is an ed25519 key pair rendered in the formats OpenSSH reads.
// It is built with the standard library only, so that the lab (and the
// mblab command) need no module beyond the standard library.
type sshKey struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func newSSHKey() (*sshKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return &sshKey{priv: priv, pub: pub}, nil
}

// sshString appends an SSH wire-format string (uint32 length + bytes).
func sshString(b []byte, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// publicWire is the public key in SSH wire format.
func (k *sshKey) publicWire() []byte {
	b := sshString(nil, []byte("ssh-ed25519"))
	return sshString(b, k.pub)
}

// authorizedKey is the one-line form used in authorized_keys and known_hosts
// ("ssh-ed25519 AAAA..." without comment).
func (k *sshKey) authorizedKey() string {
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(k.publicWire())
}

// privatePEM renders the key in the unencrypted "openssh-key-v1" format
// (PEM type "OPENSSH PRIVATE KEY"), as written by ssh-keygen.
func (k *sshKey) privatePEM(comment string) ([]byte, error) {
	var check [4]byte
	if _, err := rand.Read(check[:]); err != nil {
		return nil, fmt.Errorf("random check bytes: %w", err)
	}
	var sec []byte
	sec = append(sec, check[:]...)
	sec = append(sec, check[:]...)
	sec = sshString(sec, []byte("ssh-ed25519"))
	sec = sshString(sec, k.pub)
	sec = sshString(sec, k.priv) // 64 bytes: seed followed by public key
	sec = sshString(sec, []byte(comment))
	for i := byte(1); len(sec)%8 != 0; i++ {
		sec = append(sec, i)
	}

	b := []byte("openssh-key-v1\x00")
	b = sshString(b, []byte("none")) // cipher
	b = sshString(b, []byte("none")) // kdf
	b = sshString(b, nil)            // kdf options
	b = binary.BigEndian.AppendUint32(b, 1)
	b = sshString(b, k.publicWire())
	b = sshString(b, sec)
	return pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: b}), nil
}
