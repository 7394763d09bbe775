#!/usr/bin/env python3
"""bench/run's plot: seed items/s against concurrency, from bench/seed --csv."""
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

rows = list(csv.DictReader(open(sys.argv[1])))
fig, ax = plt.subplots(figsize=(7, 4.5))
labels = {"ours": "ours (bin/ddb/seed)", "flood-rs": "ceiling (flood-rs)", "course-py": "course style (one PutItem each)"}
from statistics import median
for tool, style in (("flood-rs", "s--"), ("ours", "o-"), ("course-py", "^:")):
    runs = [(int(r["concurrency"]), float(r["items_per_s"])) for r in rows if r["tool"] == tool]
    if not runs:
        continue
    # Every run as a faint dot, the median of each concurrency as the line.
    line, = ax.plot(*zip(*sorted({c: median(v for cc, v in runs if cc == c) for c, _ in runs}.items())), style, label=labels[tool])
    ax.scatter([c for c, _ in runs], [v for _, v in runs], color=line.get_color(), alpha=0.3, s=14)
n = max(int(r["items"]) for r in rows)
ax.set_xscale("log", base=2)
ax.set_xlabel("requests in flight")
ax.set_ylabel("items/s")
ax.set_title(f"Seed throughput, about {n:,} items, fresh DynamoDB Local each")
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
print(f"wrote {sys.argv[2]}")
