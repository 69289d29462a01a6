"""The contract between tass's parts: what the API, the worker, core, the client and the
trainer say to each other, in one place.

- `spec`: the job spec (TrainSpec, DatasetSpec) and `architecture`, the checks a user's
  Keras architecture passes before any of it runs;
- `progress`: the progress events the trainer reports and the snapshot a job stores;
- `artifacts`: where a job's files live, the model formats, and verified downloads;
- `statuses`: the job, sweep and dataset statuses.

Pure: pydantic and the standard library only (an import-linter contract checks it), so the
light client, the API and core import it without TensorFlow, NumPy or any service package.
"""
