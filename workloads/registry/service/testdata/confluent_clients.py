"""Confluent's own Python clients against the mini-broker's schema registry.

Usage: confluent_clients.py BOOTSTRAP REGISTRY_URL CA_FILE READER WRITER PASSWORD IN_TOPIC OUT_TOPIC

1. Reads every message of IN_TOPIC (written by the mini-broker's producer)
   with AvroDeserializer, looking each writer schema up by id as the reader
   user, and prints one JSON line per alert: {"read": {...}}.
2. As the reader, tries to register a schema: prints {"reader_register": CODE}.
3. As the writer, writes three records to OUT_TOPIC with AvroSerializer
   (auto.register.schemas), under Rubin's v11-like name, and prints
   {"wrote": {...}} for each.
"""
import json
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient, Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

bootstrap, url, ca, reader, writer, password, in_topic, out_topic = sys.argv[1:9]


def registry(user):
    return SchemaRegistryClient({"url": url, "basic.auth.user.info": f"{user}:{password}", "ssl.ca.location": ca})


def emit(**kw):
    print(json.dumps(kw), flush=True)


# 1. Read what the mini-broker wrote.
deserialize = AvroDeserializer(registry(reader))
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "outside-reader", "enable.auto.commit": False})
md = consumer.list_topics(in_topic, timeout=30)
parts = md.topics[in_topic].partitions
ends = {}
assign = []
for p in parts:
    lo, hi = consumer.get_watermark_offsets(TopicPartition(in_topic, p), timeout=30)
    if hi > lo:
        ends[p] = hi
        assign.append(TopicPartition(in_topic, p, lo))
consumer.assign(assign)
while ends:
    msg = consumer.poll(10)
    if msg is None:
        raise SystemExit(f"no message within 10 s; left {ends}")
    if msg.error():
        raise KafkaException(msg.error())
    value = msg.value()
    rec = deserialize(value, SerializationContext(in_topic, MessageField.VALUE))
    emit(read={
        "partition": msg.partition(), "offset": msg.offset(),
        "id": int.from_bytes(value[1:5], "big"),
        "diaSourceId": rec["diaSourceId"], "visit": rec["diaSource"]["visit"], "snr": rec["diaSource"].get("snr"),
    })
    if msg.offset() + 1 >= ends[msg.partition()]:
        del ends[msg.partition()]
consumer.close()

# 2. The reader may not register.
try:
    registry(reader).register_schema("forbidden-value", Schema('"string"', "AVRO"))
    emit(reader_register=0)
except SchemaRegistryError as e:
    emit(reader_register=e.error_code)

# 3. Write with the writer's registration.
schema = json.dumps({
    "type": "record", "name": "alert", "namespace": "lsst.v11_1",
    "fields": [{"name": "diaSourceId", "type": "long"},
               {"name": "note", "type": ["null", "string"], "default": None},
               {"name": "midpointMjdTai", "type": {"type": "long", "logicalType": "timestamp-micros"}}],
})
serialize = AvroSerializer(registry(writer), schema)
producer = Producer({"bootstrap.servers": bootstrap})
for i in range(3):
    rec = {"diaSourceId": 1000 + i, "note": f"from python {i}", "midpointMjdTai": 1700000000000000 + i}
    value = serialize(rec, SerializationContext(out_topic, MessageField.VALUE))
    producer.produce(out_topic, value)
    emit(wrote={"id": int.from_bytes(value[1:5], "big"), "diaSourceId": rec["diaSourceId"], "note": rec["note"]})
producer.flush(30)
