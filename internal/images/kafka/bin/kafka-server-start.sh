#!/bin/sh
# kafka-server-start.sh [-daemon] server.properties [--override property=value]*
#
# Runs the Kafka server (kafka.Kafka) like Apache Kafka's script: default heap
# -Xmx1G -Xms1G (KAFKA_HEAP_OPTS), log4j2 config ../config/log4j2.yaml (INFO
# to stdout; KAFKA_LOG4J_OPTS), everything else as in kafka-run-class.sh.
# Unlike Kafka's, EXTRA_ARGS has no -loggc by default (no GC log file).
if [ $# -lt 1 ]; then
  echo "USAGE: $0 [-daemon] server.properties [--override property=value]*"
  exit 1
fi
base_dir=$(dirname "$0")

if [ -z "$KAFKA_LOG4J_OPTS" ]; then
  export KAFKA_LOG4J_OPTS="-Dlog4j2.configurationFile=$base_dir/../config/log4j2.yaml"
fi
if [ -z "$KAFKA_HEAP_OPTS" ]; then
  export KAFKA_HEAP_OPTS="-Xmx1G -Xms1G"
fi

EXTRA_ARGS=${EXTRA_ARGS-'-name kafkaServer'}
if [ "$1" = -daemon ]; then
  EXTRA_ARGS="-daemon $EXTRA_ARGS"
  shift
fi

exec "$base_dir/kafka-run-class.sh" $EXTRA_ARGS kafka.Kafka "$@"
