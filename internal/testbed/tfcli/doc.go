// Package tfcli runs the real Terraform CLI for the acceptance tests and the
// benchmarks, as a user would, with the provider built from a tree of this
// repository and found through dev_overrides.
//
// It is a test bed, never imported by shipped code.
//
//   - Find finds the CLI: $TF_ACC_TERRAFORM_PATH, else the one `make
//     terraform` builds (<repo>/.cache/terraform/bin/terraform), else the
//     one on PATH.
//   - BuildProvider builds the provider of the working tree, BuildProviderRef
//     the provider of an older git revision (in a temporary worktree).
//   - New writes a CLI configuration whose dev_overrides point at a built
//     provider and returns a CLI whose Run runs one command in a root module
//     directory: its output lines stamped with their time since the start
//     (also written to LOGS/NAME.out), the provider's log (TF_LOG_PROVIDER=INFO
//     to LOGS/NAME.provider.log), the exit code, the wall time and the CPU
//     used meanwhile (internal/testbed/sample).
//   - Converge runs an apply or destroy again when it fails, as a user would,
//     up to CLI.Attempts times, and keeps every failure with Terraform's
//     error (Run.ErrorSummary).
//   - PhasesOf reads from an apply's or destroy's output and provider log
//     when each resource started and finished, and when the provider created
//     its last service, initialised the swarm and started instances.
//   - MustRun, Apply, Destroy and PlanNoChange do the same for a test or
//     benchmark, failing it as their doc comments say.
//
// Commands get this process's environment without its TF_* variables, plus
// the CLI configuration, TF_IN_AUTOMATION, TF_INPUT=0, CHECKPOINT_DISABLE and
// TF_LOG_PROVIDER=INFO; CLI.Env can be changed before running anything.
package tfcli
