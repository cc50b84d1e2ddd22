"""Run every benchmark module in bench/ that has a ``main()``: ``python -m bench [NAME…]``."""

import importlib
import pkgutil
import sys
from pathlib import Path

names = sys.argv[1:] or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
for name in names:
    mod = importlib.import_module(f"bench.{name}")
    if hasattr(mod, "main"):
        print(f"== bench/{name}.py", flush=True)
        mod.main()
