#!/bin/sh
# kafka-storage.sh format|info|random-uuid|... (kafka.tools.StorageTool), e.g.
#   kafka-storage.sh format --ignore-formatted -t CLUSTER_ID -c server.properties
# Defaults as in kafka-run-class.sh (heap -Xmx256M, WARN logging to stderr).
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
