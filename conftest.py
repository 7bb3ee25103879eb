"""pytest configuration shared by the unit tests and the nbval run of chapters/.

nbval compares the text outputs of every notebook cell (strict mode); the
cells' stderr is not compared: TensorFlow writes log lines there that carry
time stamps and process ids. Volatile text in stdout is rewritten by the
sanitizer in tests/nbval_sanitize.cfg.
"""


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)
