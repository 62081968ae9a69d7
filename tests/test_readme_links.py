"""The README is a newcomer's map: its relative links resolve, and it links every page of the
documentation site's navigation (a new page cannot be left out of it silently)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _readme_targets() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {t for t in LINK.findall(text) if "://" not in t}


def _nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


def test_readme_relative_links_resolve():
    missing = sorted(t for t in _readme_targets() if not (ROOT / t).exists())
    assert not missing, f"README.md links to missing files: {missing}"


def test_readme_links_every_documentation_page():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    pages = {f"docs/{page}" for page in _nav_pages(config["nav"])} - {"docs/index.md"}
    unlinked = sorted(pages - _readme_targets())
    assert not unlinked, f"README.md's Documentation list misses: {unlinked}"
