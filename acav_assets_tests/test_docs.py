"""The README stays short and starts with the set-up; the docs/ site builds and its links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

# [text](target) or [text](target "title"); images too. Targets with a scheme are not files.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`[^`]*`")


def _markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where a link is a link."""
    out, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(_INLINE_CODE.sub("", line))
    return "\n".join(out)


def _relative_links(path: Path) -> list[str]:
    targets = _LINK.findall(_prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not _SCHEME.match(t) and not t.startswith("#")]


def _first_fenced_block(text: str) -> str:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if _FENCE.match(line))
    end = next(i for i in range(start + 1, len(lines)) if _FENCE.match(lines[i]))
    return "\n".join(lines[start + 1 : end])


def test_readme_is_at_most_10_kib():
    size = README.stat().st_size
    assert size <= 10 * 1024, f"README.md is {size} bytes; move detail into docs/ (limit 10,240)"


def test_readme_starts_with_the_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert text.startswith("# "), "README.md must start with its title"
    block = _first_fenced_block(text)
    assert "bash scripts/demo.sh" in block, block
    assert "bash scripts/test.sh" in block, block
    # the set-up comes before any other section
    assert text.index("bash scripts/demo.sh") < text.index("\n## ", text.index("## Start here") + 1)


def test_every_relative_link_points_at_an_existing_file():
    missing = []
    for path in _markdown_files():
        for target in _relative_links(path):
            file_part = target.split("#", 1)[0].split("?", 1)[0]
            if file_part and not (path.parent / file_part).exists():
                missing.append(f"{path.relative_to(ROOT)}: {target}")
    assert not missing, "links to files that do not exist:\n" + "\n".join(missing)


def test_the_docs_link_checker_sees_links():
    # guard against a regex that silently finds nothing
    assert any(t.startswith("docs/") for t in _relative_links(README))
    assert "getting-started.md" in _relative_links(DOCS / "index.md")


def test_mkdocs_build_strict_passes(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    assert mkdocs.exists(), f"{mkdocs} is missing: install the dev extra (bash scripts/setup.sh)"
    site = tmp_path / "site"
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "index.html").exists()
    for page in sorted(DOCS.glob("*.md")):
        name = "index.html" if page.stem == "index" else f"{page.stem}/index.html"
        assert (site / name).exists(), f"{page.name} was not built"
