"""The package's direction holds: the import-linter contracts in pyproject.toml, and no cycle anywhere.

`lint-imports` checks the layers (cli > flows > stages > catalog | backends > media > core),
that nothing below flows/ knows Prefect, that the catalog is reached through its public API,
that backends are independent, and that no package has an import cycle among its modules.
The second test looks for cycles between single modules too, across the whole tree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO


def test_the_import_linter_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout and done.stdout.count("KEPT") >= 5


def test_no_module_imports_itself_back_through_others():
    import grimp

    graph = grimp.build_graph("storyflow", "flows")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(importer=imported, imported=module):
                chain = graph.find_shortest_chain(importer=imported, imported=module)
                cycles.append(" -> ".join((module, *chain)))
    assert cycles == []


def test_every_folder_says_what_lives_there_and_what_it_may_import():
    for init in sorted((REPO / "storyflow").rglob("__init__.py")) + [REPO / "flows" / "__init__.py"]:
        if "migrations" in init.parts:
            continue
        text = init.read_text()
        assert text.startswith('"""'), f"{init.relative_to(REPO)} has no docstring"
    for layer in ("core", "media", "stages", "backends", "catalog", "cli"):
        doc = (REPO / "storyflow" / layer / "__init__.py").read_text().split('"""')[1]
        assert "import" in doc, f"storyflow/{layer}/__init__.py does not say what it may import"
