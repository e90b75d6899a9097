#!/usr/bin/env python3
"""Module-level `use crate::...` cycles between the top-level modules of a crate.

Usage: python3 scripts/module_cycles.py crates/idjag-client/src [more src dirs...]

Each top-level module (`foo.rs` or `foo/mod.rs` and its children) is a node; `use crate::bar`
and `crate::bar::` paths in its code (comments, doc links and `#[cfg(test)] mod tests` left
out) are edges; names re-exported at the crate root (`pub use bar::{...}` in lib.rs) count as
their module. Prints the graph and exits 1 when a strongly connected component has more than
one module.
"""
import os
import re
import sys


def module_of(src, path):
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts[0] if parts and parts[0] not in ("lib", "main") else "crate"


def graph_of(src):
    graph = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            module = module_of(src, path)
            text = open(path, encoding="utf-8").read()
            text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
            text = re.sub(r"//[^\n]*", "", text)
            deps = graph.setdefault(module, set())
            for use in re.finditer(r"\buse\s+crate::(\{[^;]*\}|[A-Za-z_][A-Za-z0-9_]*)", text):
                group = use.group(1)
                names = (
                    re.findall(r"(?:^|[{,]\s*)([A-Za-z_][A-Za-z0-9_]*)", group)
                    if group.startswith("{")
                    else [group]
                )
                deps.update(names)
            deps.update(m.group(1) for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)::", text))
    # The crate root: lib.rs, or main.rs for a binary-only crate.
    root = os.path.join(src, "lib.rs")
    if not os.path.exists(root):
        root = os.path.join(src, "main.rs")
    lib = open(root, encoding="utf-8").read()
    alias = {}
    for m in re.finditer(r"pub use ([a-z_][a-z0-9_]*)::(\{[^;]*\}|[A-Za-z_][A-Za-z0-9_]*);", lib):
        for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(2)):
            alias[name] = m.group(1)
    modules = set(graph)
    return {k: ({alias.get(d, d) for d in v} & modules) - {k} for k, v in graph.items()}


def cycles(graph):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    status = 0
    for src in sys.argv[1:] or ["crates/idjag-client/src"]:
        graph = graph_of(src)
        for module in sorted(graph):
            print(f"{src}: {module} -> {', '.join(sorted(graph[module])) or '-'}")
        found = cycles(graph)
        print(f"{src}: cycles: {found or 'none'}")
        status |= bool(found)
    sys.exit(status)


if __name__ == "__main__":
    main()
