"""Notebook set-up: matplotlib Figures shown inline, the quick-mode size knob, the widgets' field style.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot, no
global state); :func:`enable_inline_figures` teaches IPython to show such a
figure as a PNG picture, and :func:`quick` picks small sizes in quick mode (CI).
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

from RMBG.constants import quick_mode


def _figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    return buffer.getvalue()


def enable_inline_figures(shell=None) -> bool:
    """Show matplotlib Figures as PNG pictures in IPython (also those built without pyplot).

    Returns True when a shell was found and set up. Safe to call many times.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    shell.display_formatter.formatters["image/png"].for_type(Figure, _figure_png)
    return True


def quick(small, full):
    """``small`` in quick mode (CI, ``RMBG_QUICK=1``), else ``full``: the notebooks' size knob."""
    return small if quick_mode() else full


def field_style(width: str = "460px") -> dict:
    """Keyword arguments of a labelled widget ``width`` wide, its label 110 px (all panels align)."""
    import ipywidgets as w

    return {"style": {"description_width": "110px"}, "layout": w.Layout(width=width)}
