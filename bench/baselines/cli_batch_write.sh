#!/usr/bin/env bash
# cli_batch_write.sh FILE: the AWS CLI loop that users write by hand to load scan's
# `--output dynamodb-json` lines: 25 lines at a time into one `aws dynamodb batch-write-item`
# (jq builds the request), its UnprocessedItems sent again until none are left.
# Env: AWS_CLI (default aws), DDB_MESSAGE_TABLE, AWS_ENDPOINT_URL (which the CLI reads).
set -euo pipefail
aws=${AWS_CLI:-aws} table=${DDB_MESSAGE_TABLE:-cruddur-messages}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
split -l 25 "$1" "$tmp/part-"
for part in "$tmp"/part-*; do
  jq -s --arg t "$table" '{($t): map({PutRequest: {Item: .}})}' "$part" > "$tmp/req.json"
  while :; do
    # An empty UnprocessedItems prints nothing.
    left=$("$aws" dynamodb batch-write-item --request-items "file://$tmp/req.json" --query UnprocessedItems --output json)
    if [ -z "$left" ] || [ "$(jq 'length' <<<"$left")" = 0 ]; then break; fi
    printf '%s' "$left" > "$tmp/req.json"
  done
done
