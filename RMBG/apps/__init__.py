"""Stage 6, apps: front ends over the removal pipeline, each a thin adapter.

``batch`` (files and folders: jobs, the read | model | write pipeline, watch mode), ``server``
(HTTP API and page), ``video`` (files, raw frame streams, temporal smoothing), ``beam`` (Apache
Beam), ``demo``.

May import: ``removal``, ``runtime``, ``models``, ``images`` and the base modules; one app never
imports another.
"""
