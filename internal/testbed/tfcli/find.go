package tfcli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
)

// EnvPath names the variable that points at the Terraform CLI, as
// terraform-plugin-testing reads it.
const EnvPath = "TF_ACC_TERRAFORM_PATH"

// Find returns the Terraform CLI: $TF_ACC_TERRAFORM_PATH, else
// repo/.cache/terraform/bin/terraform (`make terraform` builds it there),
// else terraform on PATH. It fails, saying how to get one, when there is
// none.
func Find(repo string) (string, error) {
	if p := os.Getenv(EnvPath); p != "" {
		return p, nil
	}
	if p := filepath.Join(repo, ".cache/terraform/bin/terraform"); fileExists(p) {
		return p, nil
	}
	if p, err := exec.LookPath("terraform"); err == nil {
		return p, nil
	}
	return "", errors.New("no Terraform CLI: run `make terraform` (builds 1.5.7 into .cache/terraform) or set " + EnvPath)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
