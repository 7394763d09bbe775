#!/usr/bin/env python3
"""create_table_latency.py ENDPOINT RUNS: the endpoint's own CreateTable time, without a process
start: one boto3 client times RUNS calls of each table shape and prints two medians in seconds,
"PLAIN COURSE": the plain table of the baselines (the AWS CLI's and course-py/schema_load.py's)
and the table of ./bin/ddb/schema-load (the GSI message-group-sk-index and a NEW_IMAGE stream).
The probe for bench/schema-load: what no client can go below."""
import statistics
import sys
import time
import uuid

import boto3

endpoint, runs = sys.argv[1], int(sys.argv[2])
ddb = boto3.client("dynamodb", endpoint_url=endpoint)
units = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
plain = dict(
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    BillingMode="PROVISIONED",
    ProvisionedThroughput=units,
)
course = dict(
    plain,
    AttributeDefinitions=plain["AttributeDefinitions"] + [{"AttributeName": "message_group_uuid", "AttributeType": "S"}],
    GlobalSecondaryIndexes=[{
        "IndexName": "message-group-sk-index",
        "KeySchema": [{"AttributeName": "message_group_uuid", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
        "ProvisionedThroughput": units,
    }],
    StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
)


def median_seconds(shape):
    times = []
    for _ in range(runs):
        name = f"probe-{uuid.uuid4().hex[:12]}"
        t = time.perf_counter()
        ddb.create_table(TableName=name, **shape)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


ddb.list_tables()  # connection and credentials ready before the first timed call
print(f"{median_seconds(plain):.4f} {median_seconds(course):.4f}")
