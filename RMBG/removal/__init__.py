"""Stage 4, removal: from a photo to a cut-out, the one pipeline every front end uses.

:class:`~RMBG.removal.pipeline.Remover`: mask -> full size -> edges / clean-up -> foreground colours
-> composition (output modes, crop) -> file format.

May import: ``runtime``, ``models``, ``images`` and the base modules.
"""
