"""Run every benchmark (or those named): python -m bench [animatic stitch film ...]."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from pathlib import Path


def main(names: list[str]) -> int:
    here = Path(__file__).parent
    found = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    chosen = names or found
    unknown = [n for n in chosen if n not in found]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from: {', '.join(found)}", file=sys.stderr)
        return 2
    # one benchmark that finds a problem (or fails) does not hide the tables of the others: all run, then the
    # exit status says whether any did
    troubled = []
    for name in chosen:
        try:
            importlib.import_module(f"bench.bench_{name}").main()
        except SystemExit as stop:
            if stop.code not in (None, 0):
                troubled.append(name)
        except Exception:  # noqa: BLE001 - its traceback is printed; the next benchmark still runs
            traceback.print_exc()
            troubled.append(name)
    if troubled:
        print(f"\nfound problems or failed: {', '.join(troubled)} (see their output above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
