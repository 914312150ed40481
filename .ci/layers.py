#!/usr/bin/env python3
"""The layer check: `src/` imports only downward, and no file imports itself
back through others.

The layers, top to bottom, are the ones `src/lib.rs` documents under
"# Layers". A module may import from its own layer and from the layers its
row below allows; `crate::config` is named by the entry layer only. Every
`use` and every inline `crate::`/`super::`/`self::` path is resolved to the
file that defines the item (following `pub use` re-exports), and the graph of
files must have no cycle, inside a directory (`routes/`) as much as across
them. Test code (`tests.rs`, `mod tests`, `#[cfg(test)]` items) may use
anything and is not read. `lib.rs` and `main.rs` are the root, above every
layer.

It also holds files to the size the style guide sets: at most MAX_LINES
lines (functions are held to 80 lines by clippy's `too_many_lines`).

Run: `python3 .ci/layers.py` from the repository root; it prints what is
wrong and exits 1, or prints a one-line summary.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Top-level modules by layer, top first.
LAYERS: list[tuple[str, list[str]]] = [
    ("entry", ["cli", "server", "reload"]),
    ("edges", ["grpc", "http"]),
    ("config", ["config"]),
    ("authz", ["authz"]),
    (
        "runtime",
        [
            "token",
            "binding",
            "identity",
            "tls",
            "telemetry",
            "audit",
            "limits",
            "metrics",
            "devtoken",
        ],
    ),
    (
        "leaves",
        [
            "outcome",
            "headers",
            "routes",
            "claims",
            "secret",
            "error_chain",
            "fetch",
            "digest",
        ],
    ),
]

# Which layers each layer may import besides its own. The edges sit above
# config but never read it: only the entry layer turns a file into settings.
MAY_IMPORT: dict[str, set[str]] = {
    "entry": {"edges", "config", "authz", "runtime", "leaves"},
    "edges": {"authz", "runtime", "leaves"},
    "config": {"authz", "runtime", "leaves"},
    "authz": {"runtime", "leaves"},
    "runtime": {"leaves"},
    "leaves": set(),
}

MAX_LINES = 500

ROOT_FILES = {"lib.rs", "main.rs"}


@dataclass
class Module:
    """One module: its path from the crate root and the file holding it."""

    path: tuple[str, ...]
    file: Path
    children: dict[str, "Module"] = field(default_factory=dict)
    # Names re-exported with `pub use` / `pub(crate) use`: name -> full path.
    reexports: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Paths this file uses, each as written (absolute or relative).
    uses: list[tuple[str, ...]] = field(default_factory=list)
    parent: "Module | None" = None


def strip_comments_and_strings(text: str) -> str:
    """Source with comments, string and char literals blanked out."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and not (
            i and (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:]):
            i += len(re.match(r"'(\\.[^']*|[^\\'])'", text[i:]).group(0))
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_code(code: str) -> str:
    """Without `#[cfg(test)]` items (and `cfg(any(test, ...))` ones): the
    attribute, then the item up to its closing brace or semicolon."""
    pattern = re.compile(r"#\[cfg\((?:test|any\(test[^)]*\))\)\]")
    while True:
        match = pattern.search(code)
        if not match:
            return code
        start, i = match.start(), match.end()
        depth = 0
        while i < len(code):
            if code[i] == "{":
                depth += 1
            elif code[i] == "}":
                depth -= 1
                if depth == 0:
                    i += 1
                    break
            elif code[i] == ";" and depth == 0:
                i += 1
                break
            i += 1
        code = code[:start] + code[i:]


def expand_use_tree(tree: str) -> list[tuple[tuple[str, ...], str]]:
    """`a::{b, c::d}` -> [((a, b), b), ((a, c, d), d)], `*` kept as a
    segment; aliases are removed before (see `parse_uses`)."""
    tree = re.sub(r"\s+", "", tree)

    def split_top(s: str) -> list[str]:
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix: tuple[str, ...], s: str) -> list[tuple[tuple[str, ...], str]]:
        if not s:
            return []
        brace = s.find("{")
        if brace >= 0 and s.endswith("}"):
            head = s[:brace].rstrip(":")
            base = prefix + tuple(p for p in head.split("::") if p)
            result = []
            for part in split_top(s[brace + 1 : -1]):
                result.extend(walk(base, part))
            return result
        segments = prefix + tuple(p for p in s.split("::") if p)
        if segments and segments[-1] == "self":
            segments = segments[:-1]
        return [(segments, segments[-1] if segments else "")]

    return walk((), tree)


USE_RE = re.compile(r"\b(pub(?:\([a-z]+\))?\s+)?use\s+([^;]+);")
INLINE_RE = re.compile(r"(?<![A-Za-z0-9_:])((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
MOD_RE = re.compile(r"^\s*((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;", re.M)


def parse_uses(code: str) -> tuple[list[tuple[tuple[str, ...], str, bool]], str]:
    """The `use` declarations of a file: (path, bound name, re-exported), and
    the code without them."""
    uses = []
    for match in USE_RE.finditer(code):
        public = match.group(1) is not None
        tree = match.group(2)
        # Aliases: `a::b as c` binds `c`; `as _` binds nothing.
        aliases = {}
        for alias in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)\s+as\s+([A-Za-z_][A-Za-z0-9_]*)", tree):
            aliases[alias.group(1)] = alias.group(2)
        tree = re.sub(r"\s+as\s+[A-Za-z_][A-Za-z0-9_]*", "", tree)
        for segments, name in expand_use_tree(tree):
            uses.append((segments, aliases.get(name, name), public))
    return uses, USE_RE.sub(" ", code)


def load(src: Path) -> dict[tuple[str, ...], Module]:
    modules: dict[tuple[str, ...], Module] = {}

    def visit(path: tuple[str, ...], file: Path, parent: Module | None) -> None:
        module = Module(path=path, file=file, parent=parent)
        modules[path] = module
        text = strip_comments_and_strings(file.read_text())
        code = drop_test_code(text)
        uses, rest = parse_uses(code)
        for segments, name, public in uses:
            module.uses.append(segments)
            if public and name and name != "*" and name != "_":
                module.reexports[name] = segments
        for match in INLINE_RE.finditer(rest):
            module.uses.append(tuple(match.group(1).split("::")))
        for match in MOD_RE.finditer(code):
            attributes, name = match.group(1), match.group(2)
            if "cfg(test)" in attributes:
                continue
            if file.name in ("lib.rs", "main.rs", "mod.rs"):
                folder = file.parent
            else:
                folder = file.parent / file.stem
            child = folder / f"{name}.rs"
            if not child.exists():
                child = folder / name / "mod.rs"
            if child.exists():
                visit(path + (name,), child, module)
                module.children[name] = modules[path + (name,)]

    visit((), src / "lib.rs", None)
    return modules


EXTERNAL_ROOTS = {"std", "core", "alloc"}


def resolve(
    modules: dict[tuple[str, ...], Module],
    start: Module,
    segments: tuple[str, ...],
    seen: set | None = None,
) -> Module | None:
    """The module whose file defines what `segments` names, as seen from
    `start`; `None` for paths outside the crate."""
    if not segments:
        return start
    seen = seen or set()
    key = (start.path, segments)
    if key in seen:
        return None
    seen.add(key)
    head, rest = segments[0], segments[1:]
    if head == "crate":
        current = modules[()]
    elif head == "super":
        current = start.parent or modules[()]
    elif head == "self":
        current = start
    elif head in start.children:
        current = start.children[head]
    else:
        return None  # an external crate, a prelude name or a local item
    while rest:
        name = rest[0]
        if name == "super":
            current = current.parent or modules[()]
            rest = rest[1:]
            continue
        if name in current.children:
            current = current.children[name]
            rest = rest[1:]
            continue
        if name in current.reexports:
            target = current.reexports[name]
            found = resolve(modules, current, target, seen)
            if found is None:
                return current
            # The re-exported item may itself be a module with more segments.
            if len(rest) > 1:
                return resolve(modules, found, ("self",) + rest[1:], seen) or found
            return found
        return current  # an item defined in this file (or a glob)
    return current


def layer_of(module: Module) -> str | None:
    if not module.path:
        return None
    top = module.path[0]
    for layer, names in LAYERS:
        if top in names:
            return layer
    return "unlisted"


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    src = root / "src"
    modules = load(src)
    problems: list[str] = []
    edges: dict[Path, set[Path]] = {}
    for module in modules.values():
        rel = module.file.relative_to(root)
        layer = layer_of(module)
        if layer == "unlisted":
            problems.append(
                f"{rel}: module `{module.path[0]}` is in no layer; add it to LAYERS in .ci/layers.py and to the map in src/lib.rs"
            )
            continue
        for segments in module.uses:
            target = resolve(modules, module, segments)
            if target is None or target.file == module.file:
                continue
            edges.setdefault(module.file, set()).add(target.file)
            target_layer = layer_of(target)
            if layer is None or target_layer is None or target_layer == "unlisted":
                continue
            if target_layer != layer and target_layer not in MAY_IMPORT[layer]:
                problems.append(
                    f"{rel}: `{'::'.join(segments)}` reaches up from the {layer} layer to the {target_layer} layer ({target.file.relative_to(root)})"
                )

    # Cycles: strongly connected components of more than one file.
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    components: list[list[Path]] = []
    counter = [0]

    sys.setrecursionlimit(10_000)

    def connect(node: Path) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in list(edges):
        if node not in index:
            connect(node)
    for component in components:
        names = sorted(str(p.relative_to(root)) for p in component)
        problems.append("import cycle among: " + ", ".join(names))

    for file in sorted(src.rglob("*.rs")):
        lines = file.read_text().count("\n")
        if lines > MAX_LINES:
            problems.append(
                f"{file.relative_to(root)}: {lines} lines, more than {MAX_LINES}; split it by concern"
            )

    if problems:
        print("layer check failed:")
        for problem in problems:
            print(f"- {problem}")
        return 1
    files = len(modules)
    imports = sum(len(v) for v in edges.values())
    print(f"layer check: {files} modules, {imports} file imports, downward only, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
