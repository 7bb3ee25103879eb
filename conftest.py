"""pytest configuration shared by the unit tests and the nbval run of chapters/.

nbval compares the text outputs of every notebook cell (strict mode); the
cells' stderr is not compared: TensorFlow writes log lines there that carry
time stamps and process ids. Volatile text in stdout is rewritten by the
sanitizer in tests/nbval_sanitize.cfg.

The notebooks run slowest first, by the README's timing table, then the unit
tests: the two xdist workers of `make test` take files in that order
(`--dist loadfile --no-loadscope-reorder`), so the run ends on short files and
both workers finish close together.
"""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _readme_block():
    path = ROOT / "scripts" / "readme_block.py"
    spec = importlib.util.spec_from_file_location("readme_block", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)


def pytest_collection_modifyitems(session, config, items):
    notebooks = sorted({item.path.name for item in items if item.path.suffix == ".ipynb"})
    if not notebooks:
        return
    order = _readme_block().slowest_first(notebooks, (ROOT / "README.md").read_text())
    rank = {name: i for i, name in enumerate(order)}
    # A stable sort: each file's items stay together and in their order.
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
