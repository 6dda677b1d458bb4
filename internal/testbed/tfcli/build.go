package tfcli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ProviderBinary is the provider's executable name, as dev_overrides look
// for it in a directory.
const ProviderBinary = "terraform-provider-minibroker"

// BuildProvider builds the provider of repo's working tree into
// dir/terraform-provider-minibroker.
func BuildProvider(ctx context.Context, repo, dir string) error {
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, ProviderBinary), ".")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build of the provider in %s: %w\n%s", repo, err, out)
	}
	return nil
}

// BuildProviderRef builds the provider as it was at git revision ref of
// repo into dir/terraform-provider-minibroker: it checks ref out into a new
// worktree under tmp (git worktree add --detach), builds it there and
// removes the worktree again (git worktree remove --force), also when the
// build fails. repo's own working tree is not touched.
func BuildProviderRef(ctx context.Context, repo, ref, tmp string) (dir string, err error) {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	src, err := os.MkdirTemp(tmp, "worktree-")
	if err != nil {
		return "", err
	}
	if err := git(ctx, repo, "worktree", "add", "--detach", src, ref); err != nil {
		return "", err
	}
	defer func() {
		if rmErr := git(context.WithoutCancel(ctx), repo, "worktree", "remove", "--force", src); err == nil {
			err = rmErr
		}
	}()
	dir = src + "-provider"
	return dir, BuildProvider(ctx, src, dir)
}

func git(ctx context.Context, repo string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %v in %s: %w\n%s", args, repo, err, out)
	}
	return nil
}
