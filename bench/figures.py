"""bench/figures.py: the figures that the bench/ scripts read, from machine-readable output only.

  figures.py hyperfine JSON NAME FIELD   from hyperfine's --export-json: the runs of the command
      named NAME (its -n name, or its command line; several results of that name, as the
      alternating runs of `-L rep 1,2,3`, are pooled). FIELD: median, mean, min, max (wall
      seconds), cpu (mean user + system seconds), count (of runs), or runs (one line per run:
      its wall seconds and its result's mean CPU seconds).
  figures.py lines FILE FIELD...          the median of each FIELD over the JSON objects of FILE,
      one object a line (our binaries' --json, one line per run), on one line.
  figures.py setup-log LOG MICROSECONDS   bench/first-run's log of ./bin/setup (each line led by
      its milliseconds since the start): "TOTAL BUILD REST" in seconds, the build ending at the
      line "== starting the local stack"; fails unless the seeded conversation was printed.
"""
import json
import statistics
import sys


def hyperfine(path, name, field):
    results = [r for r in json.load(open(path, encoding="utf-8"))["results"] if r["command"] == name]
    if not results:
        sys.exit(f"{path}: no command named {name!r}")
    times = [t for r in results for t in r["times"]]
    cpu = [r["user"] + r["system"] for r in results for _ in r["times"]]
    if field == "runs":
        return "\n".join(f"{t:.4f} {c:.2f}" for t, c in zip(times, cpu))
    if field == "count":
        return str(len(times))
    if field == "cpu":
        return f"{statistics.mean(cpu):.2f}"
    stat = {"median": statistics.median, "mean": statistics.mean, "min": min, "max": max}.get(field)
    if stat is None:
        sys.exit(f"unknown field {field!r} (median, mean, min, max, cpu, count, runs)")
    # One result: hyperfine's own figure; pooled results: the same statistic over all their runs.
    return f"{results[0][field] if len(results) == 1 else stat(times):.4f}"


def lines(path, *fields):
    objects = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    if not objects:
        sys.exit(f"{path}: no JSON objects in it")
    missing = [f for f in fields if any(f not in o for o in objects)]
    if missing:
        sys.exit(f"{path}: no field {', '.join(missing)} in its JSON")
    return " ".join(f"{statistics.median(o[f] for o in objects):g}" for f in fields)


def setup_log(path, micros):
    build, seeded, conversation = None, False, False
    for line in open(path, encoding="utf-8"):
        ms, _, text = line.rstrip("\n").partition(" ")
        if build is None and "== starting the local stack" in text:
            build = int(ms) / 1000
        seeded = seeded or "== the seeded conversation" in text
        conversation = conversation or (seeded and "yaya2devops" in text)
    if not conversation:
        sys.exit(f"{path}: no seeded conversation in it")
    if build is None:
        sys.exit(f"{path}: no line '== starting the local stack' that ends the build")
    total = int(micros) / 1e6
    return f"{total:.1f} {build:.1f} {total - build:.1f}"


if __name__ == "__main__":
    commands = {"hyperfine": hyperfine, "lines": lines, "setup-log": setup_log}
    if len(sys.argv) < 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    print(commands[sys.argv[1]](*sys.argv[2:]))
