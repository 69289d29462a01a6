"""The job process's warm-up (worker/prewarm.py): it loads TensorFlow and the trainer and
creates no device (no CUDA context on a GPU machine: the job's own `configure` must still be
able to set memory growth and precision first)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tass.worker.prewarm import Warmup

CHECK = textwrap.dedent(
    """
    import sys
    from tass.worker.prewarm import WARM_MODULES, Warmup
    assert "tensorflow" not in sys.modules
    warmup = Warmup()
    warmup.start()
    assert warmup.wait(timeout=300), "the warm-up did not end"
    assert all(name in sys.modules for name in WARM_MODULES), "not every module was imported"
    from tensorflow.python.eager import context
    assert not context.context()._initialized, "the warm-up initialised TensorFlow's devices"
    print("ok")
    """
)


def test_the_warm_up_imports_the_trainer_and_initialises_no_device():
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_a_job_process_that_was_not_warmed_up_does_not_wait():
    assert Warmup(modules=("json",)).wait(timeout=0)
