"""The notebooks' model picker: the model names (:mod:`RMBG.models.names`) or a file.

Each name in the picker says whether its file is here and, when it is not,
the ``fetch-teacher`` command that gets it (an ensemble ``A+B`` is present
when all its members are). :func:`model_options` gives the same rows as data,
:func:`model_table` as a table for a notebook cell.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from RMBG.models.names import NAMES, is_name_spec, members, name_of
from RMBG.viz.notebook import field_style

#: The names the notebooks offer, in this order (a file path can be typed beside them).
PICKER_NAMES = ("default", "u2netp", "u2net", "isnet", "u2net+isnet")


@dataclass(frozen=True)
class ModelOption:
    """One name of the picker: whether its files are here, which, and how to get the missing ones."""

    name: str
    present: bool
    #: the file (an ensemble's member files joined by `` + ``), or where it is looked for when missing
    file: str
    #: the commands that get the missing files (``""`` when present)
    get: str

    @property
    def label(self) -> str:
        """How the picker lists it: ``isnet (missing: python -m RMBG fetch-teacher isnet)``."""
        return f"{self.name} (present)" if self.present else f"{self.name} (missing: {self.get})"


def model_option(name: str) -> ModelOption:
    """The :class:`ModelOption` of a name or ``A+B`` of names (``KeyError`` for a name the table lacks)."""
    rows = [NAMES[part] for part in members(name)]
    found = [row.file() for row in rows]
    files = [str(path or row.files()[0]) for row, path in zip(rows, found)]
    missing = [row.get for row, path in zip(rows, found) if path is None]
    return ModelOption(name, not missing, " + ".join(files), "; ".join(dict.fromkeys(missing)))


def model_options(names: Sequence[str] = PICKER_NAMES) -> list[ModelOption]:
    """One :class:`ModelOption` per name, looked up now (``$U2NET_HOME`` as it is set now)."""
    return [model_option(name) for name in names]


def model_table(names: Sequence[str] = PICKER_NAMES):
    """The options as a pandas table: name, present, file, and the command that gets a missing one."""
    import pandas as pd

    rows = [{"name": o.name, "present": o.present, "file": o.file, "to get it": o.get or ""}
            for o in model_options(names)]
    return pd.DataFrame(rows).set_index("name")


def _split(value) -> tuple[list[str], list[str]]:
    """``(names, paths)`` of a starting value: names the picker lists, everything else as a path
    (a path that is a name's file counts as that name)."""
    items = [] if value is None else [value] if isinstance(value, (str, os.PathLike)) else list(value)
    names, paths = [], []
    for item in map(str, items):
        name = item if is_name_spec(item) else name_of(item)
        (names if name in PICKER_NAMES else paths).append(name if name in PICKER_NAMES else item)
    return names, paths


class ModelPicker:
    """The names (each marked present or missing, with its fetch command) and a file field.

    ``multiple=False``: a dropdown, and :attr:`value` is one model (the file
    when one is typed, else the chosen name). ``multiple=True``: a multiple
    selection, and :attr:`value` is the chosen names then the typed files
    (comma-separated). ``status`` says what the choice is, or what to run to get it.
    """

    def __init__(self, value=None, multiple: bool = False, names: Sequence[str] = PICKER_NAMES,
                 description: str = "model"):
        import ipywidgets as w

        self.multiple = multiple
        self.options = model_options(names)
        chosen, paths = _split(value)
        listed = [(o.label, o.name) for o in self.options]
        if multiple:
            self.choice = w.SelectMultiple(options=listed, value=tuple(chosen), rows=len(listed),
                                           description=description, **field_style("640px"))
        else:
            first = chosen[0] if chosen else names[0]
            self.choice = w.Dropdown(options=listed, value=first, description=description, **field_style("640px"))
        self.path = w.Text(value=", ".join(paths), description="or files" if multiple else "or a file",
                           placeholder=".keras, .tflite or .onnx file" + (", comma-separated" if multiple else ""),
                           **field_style("640px"))
        self.status = w.HTML()
        self.box = w.VBox([self.choice, self.path, self.status])
        self.observe(lambda: self._show())
        self._show()

    @property
    def value(self):
        """The model to load: one name or path, or (``multiple``) a list of them."""
        paths = [part.strip() for part in self.path.value.split(",") if part.strip()]
        if self.multiple:
            return list(self.choice.value) + paths
        return paths[0] if paths else self.choice.value

    def describe(self) -> str:
        """One line a choice: a name's file, or the command that gets it; a typed file, or that it is missing."""
        options = {o.name: o for o in self.options}
        lines = []
        for item in self.value if self.multiple else [self.value]:
            option = options.get(item)
            if option is not None:
                lines.append(f"{item}: {option.file}" if option.present
                             else f"{item} is missing: run `{option.get}`")
            else:
                lines.append(f"file {item}" if Path(item).is_file() else f"{item}: no such file")
        return "\n".join(lines) or "no model chosen"

    def observe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever the choice or the file field changes."""
        for widget in (self.choice, self.path):
            widget.observe(lambda _change: callback(), names="value")

    def _show(self) -> None:
        from html import escape

        self.status.value = "<br>".join(escape(line) for line in self.describe().splitlines())

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)


def model_picker(value=None, multiple: bool = False) -> ModelPicker:
    """The model picker of the notebooks (see :class:`ModelPicker`)."""
    return ModelPicker(value, multiple)
