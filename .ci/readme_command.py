"""Print one of the README's two quick-start commands: ``main`` or ``test``.

The README marks them with ``<!-- command:main -->`` and ``<!-- command:test -->``
on the line before their code fence; CI runs the ``test`` one verbatim.
"""

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_command(which: str, text: str | None = None) -> str:
    text = README.read_text(encoding="utf-8") if text is None else text
    match = re.search(rf"<!-- command:{which} -->\s*```(?:bash|sh)?\n(.+?)\n```", text, re.S)
    if not match:
        raise SystemExit(f"README.md has no <!-- command:{which} --> block")
    lines = [line.strip() for line in match.group(1).splitlines() if line.strip()]
    if len(lines) != 1:
        raise SystemExit(f"README.md command:{which} must be exactly one line, got {len(lines)}")
    return lines[0]


if __name__ == "__main__":
    print(readme_command(sys.argv[1] if len(sys.argv) > 1 else "test"))
