#!/bin/sh
# connect-mirror-maker.sh [-daemon] mm2.properties [--clusters A B ...]
#
# Runs MirrorMaker 2 in dedicated mode (org.apache.kafka.connect.mirror.MirrorMaker)
# like Apache Kafka's script: default heap -Xms256M -Xmx2G (KAFKA_HEAP_OPTS),
# log4j2 config ../config/connect-log4j2.yaml (INFO to stdout; KAFKA_LOG4J_OPTS),
# everything else as in kafka-run-class.sh.
if [ $# -lt 1 ]; then
  echo "USAGE: $0 [-daemon] mm2.properties"
  exit 1
fi
base_dir=$(dirname "$0")

if [ -z "$KAFKA_LOG4J_OPTS" ]; then
  export KAFKA_LOG4J_OPTS="-Dlog4j2.configurationFile=$base_dir/../config/connect-log4j2.yaml"
fi
if [ -z "$KAFKA_HEAP_OPTS" ]; then
  export KAFKA_HEAP_OPTS="-Xms256M -Xmx2G"
fi

EXTRA_ARGS=${EXTRA_ARGS-'-name mirrorMaker'}
if [ "$1" = -daemon ]; then
  EXTRA_ARGS="-daemon $EXTRA_ARGS"
  shift
fi

exec "$base_dir/kafka-run-class.sh" $EXTRA_ARGS org.apache.kafka.connect.mirror.MirrorMaker "$@"
