"""Model pre-scoring: the one hard boundary of the architecture (docs/scoring.md).

Modules, by dependency:

- ``contracts``   PURE: the scorer protocol, score-vector rules, head file names, errors.
- ``modeldir``    PURE: finds the backbone, the 40 heads and the neutral means in a model folder
                  and checksums them (no torch: the web process can say whether a model is set up).
- ``backends``    the EmpathicInsight-Face loader and batched inference; imports torch and
                  transformers lazily, only when a model is loaded.
- ``priority``    PURE: the queue priority formula (numpy only).
- ``agreement``   PURE: how a model agrees with the experts (kappa, Spearman, annotator test).
- ``services`` / ``selectors``  the Django write and read side.
- ``tasks``       Celery wrappers; scoring runs on queue "gpu", the priority recompute on "default".

Importing this package imports nothing heavy.
"""
