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


def dependencies():
    deps = {}
    uses = re.compile(r"\bcrate::(?:\{\s*)?([a-z_][a-z0-9_]*)")
    group = re.compile(r"\bcrate::\{([^;]*?)\};", re.S)
    for path in SRC.rglob("*.rs"):
        module = top_module(path)
        if module in ("lib", "main"):
            continue
        text = path.read_text()
        names = set(uses.findall(text))
        for body in group.findall(text):
            for item in re.split(r",(?![^{]*\})", body):
                item = item.strip()
                if item:
                    names.add(re.split(r"[:{\s]", item, maxsplit=1)[0])
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
