#!/usr/bin/env python3
"""Print criterion results as ratios against the baseline measured in the same run.

Usage: python3 scripts/bench_ratios.py [group-prefix]

Each criterion group holds one baseline (`raw_*`, `direct*`) and one or more measured
benches. For every measured bench it prints the mean time, the baseline's mean time and the
throughput ratio baseline_time / measured_time (1.0 = as fast as the baseline).
"""
import json
import os
import sys

root = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
prefix = sys.argv[1] if len(sys.argv) > 1 else ""


def mean_ns(group_dir, bench):
    with open(os.path.join(group_dir, bench, "new", "estimates.json")) as f:
        return json.load(f)["mean"]["point_estimate"]


rows = []
for group in sorted(os.listdir(root)) if os.path.isdir(root) else []:
    group_dir = os.path.join(root, group)
    if not group.startswith(prefix.replace("/", "_")) or not os.path.isdir(group_dir):
        continue
    benches = [b for b in os.listdir(group_dir) if os.path.isfile(os.path.join(group_dir, b, "new", "estimates.json"))]
    baselines = [b for b in benches if b.startswith("raw") or b.startswith("direct")]
    if len(baselines) != 1:
        continue
    base = mean_ns(group_dir, baselines[0])
    for bench in sorted(set(benches) - set(baselines)):
        t = mean_ns(group_dir, bench)
        rows.append((group, bench, t, baselines[0], base, base / t))

print(f"| group | measured | mean | baseline | baseline mean | ratio |")
print(f"|---|---|---|---|---|---|")
for group, bench, t, bname, base, ratio in rows:
    print(f"| {group} | {bench} | {t/1000:.1f} µs | {bname} | {base/1000:.1f} µs | {ratio:.3f} |")
