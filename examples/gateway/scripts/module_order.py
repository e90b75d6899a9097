#!/usr/bin/env python3
"""Checks that the gateway's modules depend on each other one way only.

Reads every `crate::...` path outside comments in examples/gateway/src, maps each file to its
top-level module, and fails when the top-level modules (or the files themselves) form a
cycle, or when a module uses one to its right in ORDER (the order the crate docs describe).

Usage: python3 examples/gateway/scripts/module_order.py [--graph]
"""
import pathlib
import re
import sys

ORDER = [
    "config", "protocol", "observe", "inbound", "policy", "upstream", "server", "plan",
    "authorization_server", "proxy", "admin", "gateway", "demo", "cli",
]
SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
PATH = re.compile(r"\bcrate::([a-z_]+)(?:::([a-z_]+))?")


def module_of(path):
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def code_lines(text):
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            continue
        yield line.split("//", 1)[0]


def main():
    top = {}
    files = {}
    for path in sorted(SRC.rglob("*.rs")):
        parts = module_of(path)
        if parts in [("lib",), ("main",)]:
            continue
        source = parts[0]
        file_key = "::".join(parts)
        for line in code_lines(path.read_text()):
            for first, second in PATH.findall(line):
                if first != source:
                    top.setdefault(source, set()).add(first)
                target = first if not second else f"{first}::{second}"
                if target != file_key and not file_key.startswith(target + "::"):
                    files.setdefault(file_key, set()).add(target)
    failures = []
    for source, targets in sorted(top.items()):
        for target in sorted(targets):
            if source not in ORDER or target not in ORDER:
                failures.append(f"{source} -> {target}: a module missing from ORDER")
            elif ORDER.index(target) > ORDER.index(source):
                failures.append(f"{source} -> {target}: uses a module to its right")
    for cycle in cycles(top):
        failures.append("module cycle: " + " -> ".join(cycle))
    for cycle in cycles(files):
        failures.append("file cycle: " + " -> ".join(cycle))
    if "--graph" in sys.argv:
        for source in ORDER:
            print(f"{source}: {', '.join(sorted(top.get(source, ())))}")
    for failure in failures:
        print(failure, file=sys.stderr)
    if failures:
        sys.exit(1)
    print(f"ok: {len(top)} modules, {len(files)} files, no cycle; order " + " -> ".join(ORDER))


def cycles(graph):
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


if __name__ == "__main__":
    main()
