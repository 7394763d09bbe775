#!/usr/bin/env python3
"""The course's bin/db/update_cognito_user_ids approach, for bench/cognito: boto3 ListUsers (here
every page, so that both sides sync the same users), then one UPDATE per user in autocommit, as
the course's script does. Prints the time of each phase, as update_cognito_user_ids --json does:
{"users": N, "cognito_seconds": S, "postgres_seconds": S}."""
import json, os, time
import boto3, psycopg

t0 = time.time()
client = boto3.client("cognito-idp", endpoint_url=os.environ["AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"])
users = {}
for page in client.get_paginator("list_users").paginate(
        UserPoolId=os.environ["AWS_COGNITO_USER_POOL_ID"], AttributesToGet=["preferred_username", "sub"]):
    for user in page["Users"]:
        attrs = {a["Name"]: a["Value"] for a in user["Attributes"]}
        users[attrs["preferred_username"]] = attrs["sub"]
t1 = time.time()
conn = psycopg.connect(os.environ["CONNECTION_URL"], autocommit=True)
for handle, sub in users.items():
    conn.execute("UPDATE public.users SET cognito_user_id = %(sub)s WHERE users.handle = %(handle)s",
                 {"handle": handle, "sub": sub})
t2 = time.time()
print(json.dumps({"users": len(users), "cognito_seconds": t1 - t0, "postgres_seconds": t2 - t1}))
