"""Cut-outs for the notebooks, made by the one removal pipeline :class:`RMBG.removal.pipeline.Remover`.

The figures and widgets of this package get their masks and output pictures
here or from a :class:`~RMBG.removal.pipeline.Remover` directly, never by calling the
steps (model, upsampling, refinement, composition) themselves, so that they
show exactly what ``python -m RMBG remove`` writes, with the same default runtime.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from RMBG.removal.compose import DEFAULT_BG_COLOR
from RMBG.runtime.engines import DEFAULT_RUNTIME

#: Background colour the notebooks start the ``color`` mode with.
DEFAULT_BG = "#2E8B57"


def remove_all(photos: Sequence, model=None, mode: str = "rgba", bg_color=DEFAULT_BG_COLOR, bg_image=None,
               refine: str = "none", threshold: float | None = None,
               runtime: str = DEFAULT_RUNTIME) -> list[Image.Image]:
    """The output picture of ``mode`` for every photo, as ``RMBG.apps.batch.jobs.remove_background`` makes it.

    One :class:`~RMBG.removal.pipeline.Remover` (one model load) for all the photos,
    which are read and composed one at a time.
    """
    from RMBG.removal.pipeline import Remover

    remover = Remover(model, runtime=runtime, refine=refine, threshold=threshold)
    return [remover.remove(photo, mode, bg_color=bg_color, bg_image=bg_image) for photo in photos]


def alphas(image: np.ndarray, model=None, refines: Sequence[str] = ("none",),
           runtime: str = DEFAULT_RUNTIME) -> list[np.ndarray]:
    """The full-size alphas of one RGB photo with each refinement of ``refines``, as
    ``remove_background`` makes them (the model runs once)."""
    from RMBG.removal.pipeline import Remover

    remover = Remover(model, runtime=runtime)
    small = remover.small_masks([image])[0]
    return [remover.finish(image, small, refine=refine) for refine in refines]
