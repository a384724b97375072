"""The original project's model face: ``build_model``, ``save_model``, ``load_model``.

Kept where the original project's users look for it; the code lives in :mod:`RMBG.models.build`
(and the architectures in :mod:`RMBG.models.archs`).
"""

from RMBG.models.build import (  # noqa: F401 (the face re-exports them)
    build_model,
    copy_weights,
    count_params,
    default_info,
    load_model,
    save_model,
)
from RMBG.models.info import ModelFileError, ModelInfo, read_model_info  # noqa: F401

__all__ = ["build_model", "copy_weights", "count_params", "default_info", "load_model", "save_model",
           "ModelFileError", "ModelInfo", "read_model_info"]
