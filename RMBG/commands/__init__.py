"""The command-line verbs, one module each (``rmbg VERB`` and ``python -m RMBG VERB``).

Each module parses its own arguments (``build_parser()`` where it has options to share,
``main(argv) -> int``) and calls the stage that does the work; none holds logic of its own
beyond turning arguments into calls and errors into exit codes. :mod:`RMBG.__main__` dispatches.

May import every stage (``images`` to ``apps``, ``training``, ``evaluation``) and ``Preprocess``.
"""
