// Package motoserver runs moto's server (PyPI moto[server], installed by
// `make moto` into <repo>/.cache/moto) on 127.0.0.1 as a stand-in for the AWS
// control plane (EC2, SSM, ...) in tests, so that no test ever sends a request
// to real AWS.
//
// Start launches .cache/moto/bin/moto_server (or $MOTO_SERVER) on a port the
// kernel picks, in its own process group, and returns once it answers HTTP.
// Env gives the environment for a child process (Terraform, a provider) that
// must talk to it, AWSConfig an aws.Config for the test itself; both carry
// the fixed test credentials and region and nothing from this machine's own
// AWS configuration.
//
// moto keeps all state in memory: a new Server starts empty.
package motoserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/childproc"
)

// EnvServer names the environment variable that overrides the moto_server
// executable (default <repo root>/.cache/moto/bin/moto_server).
const EnvServer = "MOTO_SERVER"

// The fixed identity every client of the server uses. moto accepts any
// credentials; these are the ones its documentation uses.
const (
	AccessKeyID     = "testing"
	SecretAccessKey = "testing"
	Region          = "us-east-1"
)

// fetchHint is appended to every "moto missing" error.
const fetchHint = `run "make moto" (scripts/fetch-moto.sh) at the repository root to install it from PyPI`

// Options configures Start.
type Options struct {
	// LogWriter, if set, receives moto's output (one line per request) as
	// it comes, each line prefixed with "moto: ".
	LogWriter io.Writer
}

// Server is a running moto_server. Close it to stop it.
type Server struct {
	url        string
	dir        string // temp dir: empty AWS config files, HOME, moto.log
	cmd        *exec.Cmd
	done       chan struct{} // closed once the process has been reaped
	waitErr    error
	readerDone chan struct{} // closed when the output reader saw EOF

	closeOnce sync.Once
	closeErr  error
}

// Binary returns the moto_server executable: $MOTO_SERVER if set, otherwise
// <repo root>/.cache/moto/bin/moto_server, where the repo root is the nearest
// ancestor of the working directory holding go.mod. It fails, saying how to
// install moto, if the file is not an executable.
func Binary() (string, error) {
	bin := os.Getenv(EnvServer)
	if bin == "" {
		root, err := images.RepoRoot()
		if err != nil {
			return "", fmt.Errorf("motoserver: %w; set %s to the moto_server executable", err, EnvServer)
		}
		bin = filepath.Join(root, ".cache", "moto", "bin", "moto_server")
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("motoserver: no moto_server at %s: %s (or set %s)", bin, fetchHint, EnvServer)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("motoserver: %s is not an executable: %s (or set %s)", bin, fetchHint, EnvServer)
	}
	return bin, nil
}

// reListening matches the line werkzeug prints once its socket listens.
var reListening = regexp.MustCompile(`Running on (http://127\.0\.0\.1:\d+)`)

// Start launches moto_server on 127.0.0.1 and a free port and waits until it
// answers HTTP. If ctx has no deadline, Start gives up after a minute. On
// error nothing is left running.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", "moto-")
	if err != nil {
		return nil, fmt.Errorf("motoserver: temp dir: %w", err)
	}
	s := &Server{dir: dir, done: make(chan struct{}), readerDone: make(chan struct{})}
	if err := s.start(ctx, bin, opts); err != nil {
		if cerr := s.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup after failed start: %w", cerr))
		}
		return nil, fmt.Errorf("motoserver: start %s: %w", bin, err)
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, bin string, opts Options) error {
	for _, name := range []string{"aws-config", "aws-credentials"} {
		if err := os.WriteFile(filepath.Join(s.dir, name), nil, 0o600); err != nil {
			return fmt.Errorf("write empty %s: %w", name, err)
		}
	}
	logFile, err := os.Create(s.logPath())
	if err != nil {
		return fmt.Errorf("create log: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return fmt.Errorf("pipe: %w", err)
	}
	// Port 0: the kernel picks a free port, and werkzeug prints it, so two
	// servers never race for one port.
	s.cmd = exec.Command(bin, "--host", "127.0.0.1", "--port", "0")
	// A fixed, minimal environment: nothing of this machine's AWS or Python
	// setup reaches moto.
	s.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.dir,
		"TMPDIR=" + os.TempDir(),
		"LANG=C.UTF-8",
		"PYTHONUNBUFFERED=1",
	}
	s.cmd.Dir = s.dir
	s.cmd.Stdout = pw
	s.cmd.Stderr = pw
	// Own process group, so that Close can signal everything moto started;
	// and killed with us if this process dies (see spawn).
	if err := childproc.Start(s.cmd); err != nil {
		pr.Close()
		pw.Close()
		logFile.Close()
		close(s.readerDone)
		close(s.done)
		s.cmd = nil
		return fmt.Errorf("exec: %w", err)
	}
	pw.Close() // the child holds the write end now
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()

	urlCh := make(chan string, 1)
	go func() {
		defer close(s.readerDone)
		defer logFile.Close()
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if opts.LogWriter != nil {
				fmt.Fprintf(opts.LogWriter, "moto: %s\n", line)
			}
			if m := reListening.FindStringSubmatch(line); m != nil && !found {
				found = true
				urlCh <- m[1]
			}
		}
	}()

	select {
	case s.url = <-urlCh:
	case <-s.done:
		return fmt.Errorf("moto_server exited during start (%v); output:\n%s", s.waitErr, s.LogTail(20))
	case <-ctx.Done():
		return fmt.Errorf("wait for moto_server to listen: %w; output:\n%s", ctx.Err(), s.LogTail(20))
	}
	return s.waitAnswers(ctx)
}

// waitAnswers polls the server until it answers an HTTP request.
func (s *Server) waitAnswers(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/moto-api/", nil)
		if err != nil {
			return fmt.Errorf("build readiness request: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
			err = fmt.Errorf("HTTP %s", resp.Status)
		}
		select {
		case <-s.done:
			return fmt.Errorf("moto_server exited during start (%v); output:\n%s", s.waitErr, s.LogTail(20))
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to answer (last: %v): %w", s.url, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// URL returns the server's base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.url }

// ConfigFile and CredentialsFile are the empty AWS shared config and
// credentials files that Env points AWS_CONFIG_FILE and
// AWS_SHARED_CREDENTIALS_FILE at, so that no profile of this machine is read.
func (s *Server) ConfigFile() string      { return filepath.Join(s.dir, "aws-config") }
func (s *Server) CredentialsFile() string { return filepath.Join(s.dir, "aws-credentials") }

func (s *Server) logPath() string { return filepath.Join(s.dir, "moto.log") }

// Env returns the environment variables that point an AWS SDK or CLI in a
// child process at this server, with test credentials and no profile, IMDS
// or shared file of this machine. Append them after the parent's environment
// (later entries win) and drop the parent's AWS_* variables if they could
// matter (AWS_PROFILE, AWS_ENDPOINT_URL_<SERVICE>, ...).
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.url,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + s.ConfigFile(),
		"AWS_SHARED_CREDENTIALS_FILE=" + s.CredentialsFile(),
	}
}

// AWSConfig returns an aws.Config for SDK clients in this process that talk to
// the server: its URL as base endpoint, the test credentials and region.
//
// It is built by hand rather than by config.LoadDefaultConfig, which would
// read this process's environment and ~/.aws (AWS_PROFILE, or a
// service-specific AWS_ENDPOINT_URL_EC2 that overrides BaseEndpoint): with no
// ConfigSources nothing of the machine can redirect a test's requests. ctx
// is unused for now; it is there so that the config may later be loaded.
func (s *Server) AWSConfig(ctx context.Context) (aws.Config, error) {
	if err := ctx.Err(); err != nil {
		return aws.Config{}, fmt.Errorf("motoserver: aws config: %w", err)
	}
	return aws.Config{
		Region:       Region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")),
		BaseEndpoint: aws.String(s.url),
	}, nil
}

// LogTail returns the last n lines moto printed, for error messages.
func (s *Server) LogTail(n int) string { return childproc.TailFile(s.logPath(), n) }

// Close stops the server: SIGTERM to its process group, SIGKILL after 5
// seconds, then waits for it and removes its temp directory. It is safe to
// call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.cmd != nil && s.cmd.Process != nil {
			pgid := s.cmd.Process.Pid
			if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("SIGTERM moto_server group %d: %w", pgid, err))
			}
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
					errs = append(errs, fmt.Errorf("SIGKILL moto_server group %d: %w", pgid, err))
				}
				select {
				case <-s.done:
				case <-time.After(5 * time.Second):
					errs = append(errs, fmt.Errorf("moto_server (pid %d) did not exit after SIGKILL", pgid))
				}
			}
			// Anything else left in the group (moto starts no children, but
			// a wrapper given as $MOTO_SERVER might) goes too.
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-s.readerDone:
			case <-time.After(5 * time.Second):
				errs = append(errs, errors.New("moto_server output still open 5s after exit"))
			}
		}
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.dir, err))
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("motoserver: close: %w", err)
		}
	})
	return s.closeErr
}
