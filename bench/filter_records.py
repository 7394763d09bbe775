"""What the event source mapping's filter saves: reads every record of a table's stream (every
shard, from its start) from DynamoDB Local, wraps each as Lambda delivers it, and counts by kind
how many there are and how many deploy/messaging-stream.yaml's FilterCriteria lets through,
matched by moto's implementation of the filter syntax (deploy/filter_match.py).

Run by bench/filter with the Python of moto's virtualenv:
    filter_records.py ENDPOINT TABLE TEMPLATE
prints one JSON object: {"records": N, "delivered": M, "kinds": {KIND: [records, delivered]}}.
"""

import json
import os
import sys

import boto3

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy"))
from filter_match import delivered, patterns  # noqa: E402


def stream_records(endpoint, table):
    """Every record of the table's stream, each in the shape of a Lambda event's record."""
    ddb = boto3.client("dynamodb", endpoint_url=endpoint)
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    for shard in shards:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = streams.get_records(ShardIterator=it)
            if not page["Records"]:
                break
            for r in page["Records"]:
                yield {
                    "eventName": r["eventName"],
                    "eventSource": r["eventSource"],
                    "eventSourceARN": arn,
                    "dynamodb": {
                        "Keys": r["dynamodb"]["Keys"],
                        "NewImage": r["dynamodb"].get("NewImage", {}),
                        "SequenceNumber": r["dynamodb"]["SequenceNumber"],
                    },
                }
            it = page.get("NextShardIterator")


def kind(record):
    """The record's kind: its row type (by the pk's prefix) and its event."""
    pk = record["dynamodb"]["Keys"]["pk"]["S"]
    row = {"MSG#": "message", "GRP#": "group row", "LOCK": "lock row"}.get(pk[:4], "other row")
    return f"{row} {record['eventName']}"


def main():
    endpoint, table, template = sys.argv[1:4]
    compiled = patterns(template)
    kinds = {}
    for r in stream_records(endpoint, table):
        k = kinds.setdefault(kind(r), [0, 0])
        k[0] += 1
        k[1] += int(delivered(compiled, r))
    total = sum(v[0] for v in kinds.values())
    passed = sum(v[1] for v in kinds.values())
    print(json.dumps({"records": total, "delivered": passed, "kinds": dict(sorted(kinds.items()))}))


if __name__ == "__main__":
    main()
