"""MkDocs hooks (mkdocs.yml): the README is the site's home page, and links that leave docs/ are checked here.

MkDocs checks a link between two pages, and the anchor it names, and in strict mode a broken one fails the
build. A link from a page to the suite's code (``../backends/base.py``) or from the README into ``docs/`` is
outside what MkDocs can see: it would be "not found", and tolerating "not found" would let a broken page link
pass too. So before MkDocs reads a page, each relative link is resolved against the checkout: one into
``docs/`` is rewritten relative to the page (MkDocs then checks it and its anchor), one to an existing file
elsewhere in the checkout is rendered as its text and path (the site carries no code), and one to a file that
does not exist is a warning, which ``--strict`` turns into a failed build.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File

LOG = get_plugin_logger(__name__)
ROOT = Path(__file__).resolve().parents[1]
HOME = "index.md"
#: An inline Markdown link or image: ``[text](target)`` / ``![alt](target)``; a title after the target is kept.
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def on_files(files, config):
    """The README, as the home page; its links are resolved from the checkout's top (on_page_markdown)."""
    if files.get_file_from_path(HOME) is not None:
        LOG.warning(f"docs/{HOME} exists: the README is the site's home page (tools/mkdocs_hooks.py)")
        return files
    files.append(File.generated(config, HOME, content=(ROOT / "README.md").read_text(encoding="utf-8")))
    return files


def on_page_markdown(markdown, page, config, files):
    docs = Path(config["docs_dir"]).resolve()
    source = page.file.abs_src_path
    where = "README.md" if source is None else f"docs/{page.file.src_uri}"
    base = ROOT if source is None else Path(source).resolve().parent
    page_dir = (docs / page.file.src_uri).parent

    def rewrite(match):
        target = match["target"]
        if target.startswith(("#", "/")) or SCHEME.match(target):
            return match[0]  # an anchor on this page (MkDocs checks it), or an absolute URL
        path, hash_, anchor = target.partition("#")
        resolved = (base / path).resolve()
        if not resolved.exists():
            LOG.warning(f"{where}: the link to '{target}' names {_shown(resolved)}, which does not exist")
            return match[0]
        if resolved.is_relative_to(docs):
            new = Path(os.path.relpath(resolved, page_dir)).as_posix() + hash_ + anchor
            return f"{match['bang']}[{match['text']}]({new}{match['title'] or ''})"
        shown = _shown(resolved)
        return match["text"] if shown in match["text"] else f"{match['text']} (`{shown}`)"

    out, fenced = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        out.append(line if fenced else LINK.sub(rewrite, line))
    return "\n".join(out)


def _shown(path: Path) -> str:
    """A path as the suite names it: relative to the checkout where it is inside."""
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
