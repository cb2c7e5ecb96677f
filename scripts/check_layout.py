#!/usr/bin/env python3
"""Layout rules that keep the code easy to see, checked in CI.

usage: scripts/check_layout.py

1. No module cycle between the top-level modules of src/ (a module `a` depends on `b` when any
   file under src/a.rs or src/a/ names `crate::b`).
2. No file in src/ above 500 lines, except the pure wire-type tables listed in WIRE_TABLES.
3. The simulators crate never names the gateway crate: a simulator written from the providers'
   documentation must not share the adapters' types or assumptions.

Prints one line per problem and exits 1 when there is any.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
MAX_LINES = 500
# Pure tables of serde wire types (no logic): allowed to be longer.
WIRE_TABLES = set()


def top_module(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def top_level_items(body):
    """The first path segment of each item of a `use crate::{...}` group (nesting aware)."""
    items, depth, current = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    names = []
    for item in items:
        item = item.strip()
        if item:
            names.append(re.split(r"[:{\s]", item, maxsplit=1)[0])
    return names


def dependencies():
    deps = {}
    single = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
    for path in SRC.rglob("*.rs"):
        module = top_module(path)
        if module in ("lib", "main"):
            continue
        text = re.sub(r"//[^\n]*", "", path.read_text())
        names = set(single.findall(text))
        for start in re.finditer(r"\bcrate::\{", text):
            depth, i = 1, start.end()
            while depth and i < len(text):
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            names.update(top_level_items(text[start.end():i - 1]))
        names.discard(module)
        names = {n for n in names if (SRC / f"{n}.rs").exists() or (SRC / n).is_dir()}
        deps.setdefault(module, set()).update(names)
    return deps


def cycles(deps):
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(deps.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(deps):
        if node not in state:
            visit(node)
    return found


def main():
    problems = []
    for cycle in cycles(dependencies()):
        problems.append("module cycle: " + " -> ".join(cycle))
    for path in sorted(SRC.rglob("*.rs")):
        rel = str(path.relative_to(ROOT))
        lines = sum(1 for _ in path.open())
        if lines > MAX_LINES and rel not in WIRE_TABLES:
            problems.append(f"{rel}: {lines} lines (at most {MAX_LINES})")
    sims = ROOT / "simulators"
    if sims.is_dir():
        for path in sorted(sims.rglob("*")):
            if path.suffix in (".rs", ".toml") and "target" not in path.parts:
                if re.search(r"refund_gateway\b|refund-gateway\s*=", path.read_text()):
                    problems.append(f"{path.relative_to(ROOT)}: names the gateway crate")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
