package ec2bed

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestWriteKeyPair(t *testing.T) {
	file := filepath.Join(t.TempDir(), "id_ed25519")
	public, err := writeKeyPair(file)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("the private key does not parse: %v", err)
	}
	pub, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	want := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if !bytes.Equal(pub, want) || public+"\n" != string(want) {
		t.Errorf("public key %q (file %q), want %q", public, pub, want)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
	}
}
