"""A plain-Python port of the reference air test (method.md §2.4), kept only to check and
benchmark the vectorised :func:`semantic_genesis.discovery.coordinates.cube_scores`.

It is a line-by-line port of the loop in ``get_random_coordinate`` (SemanticGenesis
``pattern_generator_3D.py`` / ModelsGenesis ``infinite_generator_3D.py``): about 0.2 s per trial
for a 64 x 64 x 32 cube. Do not use it for real work.
"""

from __future__ import annotations

import numpy as np

from semantic_genesis.discovery.coordinates import LOOK_AHEAD, TISSUE_THRESHOLD


def reference_air_score(window: np.ndarray, patch: tuple[int, int, int],
                        threshold: float = TISSUE_THRESHOLD, look_ahead: int = LOOK_AHEAD
                        ) -> float:
    """The reference's score sum divided by the cube size, for ``window`` =
    ``volume[x:x+px, y:y+py, z:z+pz+look_ahead]`` (the reference's crop)."""
    rows, cols, deps = patch
    d_img = np.zeros((rows, cols, deps), dtype=np.float64)
    for d in range(deps):
        for i in range(rows):
            for j in range(cols):
                for k in range(look_ahead):
                    if window[i, j, d + k] >= threshold:
                        d_img[i, j, d] = k
                        break
                    if k == look_ahead - 1:
                        d_img[i, j, d] = k
    d_img = d_img.astype(np.float32)
    d_img /= look_ahead - 1
    d_img = 1.0 - d_img
    return float(np.sum(d_img)) / (rows * cols * deps)
