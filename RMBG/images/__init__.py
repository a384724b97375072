"""Stage 1, images: photos and masks on disk and in memory.

Safe reading (every bad file a clear :class:`~RMBG.images.io.ImageReadError`), atomic writing,
the prepared dataset folder (``index.csv``, pairs, splits) and the expansion of command-line
inputs (files, folders, globs, ``@FILE`` lists) into photos.

May import: ``RMBG.constants``, ``RMBG.quiet``. Nothing else of the project.
"""
