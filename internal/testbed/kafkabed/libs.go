package kafkabed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
)

// EnvLibs names the environment variable that overrides where the Kafka jars
// are looked for.
const EnvLibs = images.EnvKafkaLibs

// EnvKeepBed names the environment variable that, when "1", keeps every
// process's temp directory (configs, data and logs) after Stop.
const EnvKeepBed = "MINIBROKER_KEEP_BED"

// fetchHint is appended to every "jars missing" error.
const fetchHint = `run "make kafka" (scripts/fetch-kafka.sh) at the repository root to download them from Maven Central`

// LibsDir returns the directory holding the Kafka jars: $MINIBROKER_KAFKA_LIBS
// if set, otherwise <repo root>/.cache/kafka/libs, where the repo root is the
// nearest ancestor of the working directory that contains go.mod. It fails,
// saying how to fetch them, if the directory holds no Kafka server jar.
func LibsDir() (string, error) {
	dir, err := images.KafkaLibsDir()
	if err != nil {
		return "", fmt.Errorf("kafkabed: %w", err)
	}
	jars, _ := filepath.Glob(filepath.Join(dir, "kafka_2.13-*.jar"))
	if len(jars) == 0 {
		return "", fmt.Errorf("kafkabed: no Kafka jars in %s: %s", dir, fetchHint)
	}
	return dir, nil
}

// javaBinary returns $JAVA_HOME/bin/java when JAVA_HOME is set, else the java
// on PATH.
func javaBinary() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		bin := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	bin, err := exec.LookPath("java")
	if err != nil {
		return "", errors.New("kafkabed: no java found (set JAVA_HOME or put Java 17+ on PATH)")
	}
	return bin, nil
}
