#!/usr/bin/env python3
"""bench/cognito's fixture: a user pool on moto with N users (preferred_username userNNNNN) and
the same handles as rows of Postgres users. Prints the pool id."""
import os, sys
from concurrent.futures import ThreadPoolExecutor
import boto3, psycopg

n = int(sys.argv[1])
client = boto3.client("cognito-idp", endpoint_url=os.environ["AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"])
pool = client.create_user_pool(PoolName="bench")["UserPool"]["Id"]
def create(i):
    h = f"user{i:05d}"
    client.admin_create_user(UserPoolId=pool, Username=h,
                             UserAttributes=[{"Name": "preferred_username", "Value": h}])
with ThreadPoolExecutor(8) as ex:
    list(ex.map(create, range(n)))
with psycopg.connect(os.environ["CONNECTION_URL"]) as conn:
    conn.execute("DELETE FROM public.users WHERE handle LIKE 'user%'")
    conn.execute("""INSERT INTO public.users (display_name, handle, email, cognito_user_id)
                    SELECT 'User ' || i, 'user' || lpad(i::text, 5, '0'), 'u' || i || '@example.com', 'MOCK'
                    FROM generate_series(0, %s) AS i""", (n - 1,))
print(pool)
