"""boto3_batch_writer.py FILE: the boto3 way to load scan's `--output dynamodb-json` lines: each
line deserialised (TypeDeserializer) and put through Table.batch_writer(), which sends 25 items a
BatchWriteItem, one call at a time, and resends UnprocessedItems. Env: AWS_ENDPOINT_URL,
DDB_MESSAGE_TABLE."""
import json
import os
import sys

import boto3
from boto3.dynamodb.types import TypeDeserializer

des = TypeDeserializer()
ddb = boto3.resource("dynamodb", endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://localhost:8000"))
table = ddb.Table(os.environ.get("DDB_MESSAGE_TABLE", "cruddur-messages"))
with open(sys.argv[1]) as f, table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
    for line in f:
        if line.strip():
            writer.put_item(Item={k: des.deserialize(v) for k, v in json.loads(line).items()})
