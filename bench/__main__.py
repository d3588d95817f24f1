"""Run every benchmark (or those named): python -m bench [animatic stitch film ...]."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(names: list[str]) -> int:
    here = Path(__file__).parent
    found = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    chosen = names or found
    unknown = [n for n in chosen if n not in found]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from: {', '.join(found)}", file=sys.stderr)
        return 2
    for name in chosen:
        importlib.import_module(f"bench.bench_{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
