"""bench/timings.py REPORT.html METADATA.json [OURS_S BUILD_S BASE_S VERDICT]: reads the report of
`cargo build --timings` (its UNIT_DATA: each unit's duration and when its metadata was ready) and
the package graph of `cargo metadata`, and prints the ten slowest units, the sum of all units, and
the critical path: the longest chain of units that wait for each other. With the
figures of bench/first-run, and a verdict other than "met", also the reason: the floor that this
path and the 2 cores set under our setup's time."""
import json
import os
import re
import sys


def units(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"UNIT_DATA\s*=\s*", text)
    if not m:
        sys.exit(f"{path}: no UNIT_DATA in this --timings report")
    data, _ = json.JSONDecoder().raw_decode(text, m.end())
    return data


def label(u):
    target = u.get("target", "").strip()
    return f"{u['name']} v{u['version']}{(' ' + target) if target else ''}"


def rmeta_time(u):
    """Seconds from u's start to its metadata: its frontend's end, or the older rmeta_time."""
    for name, span in u.get("sections") or []:
        if name == "frontend":
            return span["end"]
    return u.get("rmeta_time") or u["duration"]


def critical_path(data, metadata):
    """The longest chain of units that wait for each other, from the package graph of `cargo
    metadata` and the unit times of the report: a library waits for its build script's run and
    for the metadata of each dependency (a proc macro: its end); a build script for the end of its
    build-dependencies; a binary for the end of every library it links. This chain bounds the build
    from below however many cores there are. Returns [(unit, seconds it adds)]."""
    pkgs = {p["id"]: p for p in metadata["packages"]}
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
    unit = {}
    for u in data:
        t = u.get("target", "").strip()
        kind = "run" if u.get("mode") == "run-custom-build" else "build" if t == "build-script" else "bin" if t else "lib"
        key = (u["name"], u["version"], kind)
        if key not in unit or u["duration"] > unit[key]["duration"]:
            unit[key] = u
    by_nv = {(p["name"], p["version"]): pid for pid, p in pkgs.items()}
    memo = {}

    def deps(pid, kinds):
        return [d["pkg"] for d in nodes[pid]["deps"] if any(k["kind"] in kinds for k in d["dep_kinds"])]

    def is_macro(pid):
        return any("proc-macro" in t["kind"] for t in pkgs[pid]["targets"])

    def closure(pid, seen):
        for d in deps(pid, (None,)):
            if d not in seen:
                seen.add(d)
                closure(d, seen)
        return seen

    def end(pid, kind, meta=False):
        """(seconds until the unit's end, or its metadata, when nothing waits on a core; path)."""
        p = pkgs[pid]
        u = unit.get((p["name"], p["version"], kind))
        if u is None:
            return 0.0, []
        key = (pid, kind)
        if key not in memo:
            waits = []
            if kind == "lib":
                waits += [end(pid, "run")] + [end(d, "lib", meta=not is_macro(d)) for d in deps(pid, (None,))]
            elif kind == "run":
                waits.append(end(pid, "build"))
            elif kind == "build":
                waits += [end(d, "lib") for d in deps(pid, ("build",))]
            else:
                waits += [end(pid, "lib")] + [end(d, "lib") for d in closure(pid, set())]
            t0, path = max(waits, key=lambda w: w[0], default=(0.0, []))
            memo[key] = (t0, path, u)
        t0, path, u = memo[key]
        took = rmeta_time(u) if meta else u["duration"]
        return t0 + took, path + [(u, took)]

    best = (0.0, [])
    for (name, version, kind), u in unit.items():
        pid = by_nv.get((name, version))
        if pid is not None:
            best = max(best, end(pid, kind), key=lambda w: w[0])
    return best[1]


def main():
    data = units(sys.argv[1])
    end = max(u["start"] + u["duration"] for u in data)
    total = sum(u["duration"] for u in data)
    cores = os.cpu_count() or 1
    print(f"our build: {len(data)} units, {end:.1f} s, sum of unit times {total:.1f} s; the ten slowest:")
    for u in sorted(data, key=lambda u: -u["duration"])[:10]:
        print(f"  {u['duration']:6.1f} s  {label(u)}")
    segs = critical_path(data, json.load(open(sys.argv[2], encoding="utf-8")))
    crit = sum(t for _, t in segs)
    shown = " -> ".join(f"{u['name']} {t:.1f}" for u, t in segs if t >= 1.0)
    print(f"critical path: {crit:.1f} s of work in {len(segs)} units that wait for each other ({shown}; units under 1 s left out)")
    if len(sys.argv) >= 7 and sys.argv[6] != "met":
        ours, build, base = (float(x) for x in sys.argv[3:6])
        floor_build = max(crit, total / cores)
        floor = floor_build + (ours - build)
        print(
            f"reason: our build cannot end before {floor_build:.0f} s on {cores} cores (the larger of its critical path, "
            f"{crit:.0f} s, and its sum of unit times over {cores} cores, {total / cores:.0f} s); with setup's other "
            f"{ours - build:.0f} s (DynamoDB Local's install and start, Postgres, the table, the seed) that is "
            f"{floor:.0f} s, {floor / base:.2f} of the baseline's {base:.0f} s"
        )


if __name__ == "__main__":
    main()
