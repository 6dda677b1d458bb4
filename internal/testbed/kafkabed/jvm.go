package kafkabed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// jvmSpec describes one java invocation.
type jvmSpec struct {
	java      string   // java binary
	libs      string   // directory of jars; the classpath is libs/*
	heapMB    int      // -Xms and -Xmx
	mainClass string   // fully qualified main class
	args      []string // program arguments
	log4j     string   // path of the log4j2 configuration file
}

// command returns argv (without the binary) for the invocation. The GC flags
// are the ones Kafka's own scripts use (KAFKA_JVM_PERFORMANCE_OPTS).
func (s jvmSpec) command() []string {
	argv := []string{
		fmt.Sprintf("-Xms%dm", s.heapMB),
		fmt.Sprintf("-Xmx%dm", s.heapMB),
		"-server",
		"-XX:+UseG1GC",
		"-XX:MaxGCPauseMillis=20",
		"-XX:InitiatingHeapOccupancyPercent=35",
		"-XX:+ExplicitGCInvokesConcurrent",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + s.log4j,
		"-cp", filepath.Join(s.libs, "*"),
		s.mainClass,
	}
	return append(argv, s.args...)
}

// writeLog4j writes a log4j2 XML configuration that sends everything at level
// and above to logFile, and returns the configuration's path.
func writeLog4j(dir, name, logFile, level string) (string, error) {
	path := filepath.Join(dir, name+"-log4j2.xml")
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="`)
	b.WriteString(xmlEscape(logFile))
	b.WriteString(`" append="true" immediateFlush="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <!-- Kafka's own request/state-change loggers are very chatty at INFO. -->
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Root level="`)
	b.WriteString(level)
	b.WriteString(`"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
`)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("kafkabed: write log4j2 config: %w", err)
	}
	return path, nil
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
