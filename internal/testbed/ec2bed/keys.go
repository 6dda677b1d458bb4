package ec2bed

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// writeKeyPair writes a new ed25519 private key to file and its public key
// to file.pub, as ssh-keygen would, and returns the public key in
// authorized_keys form without the newline.
func writeKeyPair(file string) (public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "minibroker-test")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	authorized := ssh.MarshalAuthorizedKey(sp)
	if err := os.WriteFile(file+".pub", authorized, 0o644); err != nil {
		return "", err
	}
	return strings.TrimSpace(string(authorized)), nil
}
