#!/usr/bin/env python3
"""Front quality of several `aellm search --json` runs: each run's measured,
feasible points are normalised over the union of all runs' (objectives
minimised: -acc, latency, memory, energy; reference 1.1 per objective), and
the run's hypervolume is printed as a share of the union's. Exact
hypervolume by slicing (fine for the few hundred points of a benchmark)."""
import json
import sys


def dominated_volume(points, ref):
    """Exact hypervolume of `points` (minimisation) against `ref`."""
    pts = [p for p in points if all(x < r for x, r in zip(p, ref))]
    if not pts:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in pts)
    pts.sort(key=lambda p: p[-1])
    vol = 0.0
    for i, p in enumerate(pts):
        upper = pts[i + 1][-1] if i + 1 < len(pts) else ref[-1]
        if upper > p[-1]:
            vol += (upper - p[-1]) * dominated_volume([q[:-1] for q in pts[: i + 1]], ref[:-1])
    return vol


def measured(path):
    r = json.load(open(path))
    return [(-p["acc"], p["latency_s"], p["memory_bytes"], p["energy_j"])
            for p in r["points"] if p["provenance"] == "measured" and p["violation"] == 0]


runs = [measured(f) for f in sys.argv[1:]]
union = [p for r in runs for p in r]
lo = [min(p[k] for p in union) for k in range(4)]
hi = [max(p[k] for p in union) for k in range(4)]
norm = lambda pts: [tuple((x - a) / (b - a) if b > a else 0 for x, a, b in zip(p, lo, hi)) for p in pts]
ref = (1.1,) * 4
whole = dominated_volume(norm(union), ref)
for r in runs:
    print("%.3f" % (dominated_volume(norm(r), ref) / whole if whole > 0 else 0))
