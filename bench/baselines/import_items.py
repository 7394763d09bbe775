"""import_items.py N: N items as `bin/ddb/scan --output dynamodb-json` writes them, one a line, of
the ceiling probe's shape (flood-rs: 100-character messages, one partition): N - 2 message rows of
one conversation and its two group rows, on its newest message. Deterministic."""
import json
import sys

n = int(sys.argv[1])
group = "5ae290ed-55d1-47a0-bc6d-000000000bec"
me, other = "2d2839f6-dd3c-442a-a1d7-72d4bbeedb75", "11111111-1111-4111-8111-111111111111"
out = sys.stdout
S = lambda v: {"S": v}
last = None
for i in range(n - 2):
    sk = "2026-01-01T%02d:%02d:%02d.%06d+00:00" % (i // 3600000000 % 24, i // 60000000 % 60, i // 1000000 % 60, i % 1000000)
    last = sk
    out.write(json.dumps({"message": S("x" * 100), "message_uuid": S("00000000-0000-4000-8000-%012d" % i), "pk": S("MSG#" + group),
                          "sk": S(sk), "user_display_name": S("Andrew Bayko"), "user_handle": S("bayko"), "user_uuid": S(other)},
                         separators=(",", ":")) + "\n")
for owner, who, name, handle in [(me, other, "Andrew Bayko", "bayko"), (other, me, "Yaya", "yaya2devops")]:
    out.write(json.dumps({"message": S("x" * 100), "message_group_uuid": S(group), "pk": S("GRP#" + owner), "sk": S(last),
                          "user_display_name": S(name), "user_handle": S(handle), "user_uuid": S(who)}, separators=(",", ":")) + "\n")
