"""The contract (job spec, progress shape, artifact layout, statuses) is what the light client,
the API and core share with the trainer: importing it must load no TensorFlow, NumPy, database
or web library, only pydantic and the standard library."""

from __future__ import annotations

import json
import subprocess
import sys

# pydantic and what pydantic itself imports
ALLOWED = {"pydantic", "pydantic_core", "typing_extensions", "annotated_types", "typing_inspection"}
CONTRACT_MODULES = ("architecture", "artifacts", "progress", "spec", "statuses")


def test_importing_the_contract_loads_only_pydantic_and_the_standard_library() -> None:
    imports = "; ".join(f"import tass.contract.{name}" for name in CONTRACT_MODULES)
    code = (
        f"import sys, json; before = set(sys.modules); {imports}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    stdlib = set(sys.stdlib_module_names)
    loaded = {m for m in json.loads(out.stdout) if m not in stdlib and m != "tass"}
    loaded = {m for m in loaded if not m.startswith("_sysconfigdata")}  # the platform's sysconfig
    assert loaded <= ALLOWED, sorted(loaded - ALLOWED)
