"""finslm: small, fast, explainable financial-sentiment models.

The library behind the DVC pipeline in ``dvc.yaml``; each stage in ``stages/`` is a thin entry
point over one module here. See ``docs/design.md`` and the README for the whole picture.
"""

__version__ = "0.1.0"
