"""Sphinx configuration of the numpyvae course book.

Build (from the repository root; see docs/book.md):

    pip install -e ".[docs]" && python -m sphinx -W --keep-going -b html -c docs . docs/_build/html

The source folder is the repository root, so the lectures (notebooks/), the
derivation notes (derivations/) and the instructor's guide are rendered where
they live and their relative links keep working; ``include_patterns`` below
says which files are pages.  Nothing is fetched: MathJax comes from the
sphinx-mathjax-offline package and is copied into the built site, the theme's
fonts and scripts are its own static files, and the lectures are rendered
from their stored outputs (never executed here).
"""
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))          # autodoc imports this checkout's numpyvae, not an installed one
sys.path.insert(0, str(DOCS / "_ext"))

import numpyvae  # noqa: E402

project = "numpyvae"
author = "the numpyvae developers"
copyright = "the numpyvae developers, MIT licensed"
release = version = numpyvae.__version__

root_doc = "docs/index"

# Which files are pages.  New lectures (notebooks/NN-*.ipynb), notes
# (derivations/NN-*.md) and homework masters (notebooks/homework/NN-*.ipynb) are
# picked up by these globs and by the tables of contents' globs (docs/lectures.md,
# docs/notes.md, docs/homework.md): adding one needs no change here.
include_patterns = [
    "docs/*.md",
    "docs/_generated/homework/*.ipynb",
    "derivations/*.md",
    "derivations/results/*.md",
    "notebooks/*.ipynb",
    "notebooks/README.md",
    "notebooks/homework/README.md",
    "reproduce/README.md",
]
exclude_patterns = ["docs/_build/**", "**/.ipynb_checkpoints/**"]

extensions = [
    "myst_nb",                       # Markdown (MyST) and notebooks
    "sphinx.ext.autodoc",            # the API reference, from the docstrings
    "sphinx-mathjax-offline",        # MathJax 3 served from the built site
    "numpyvae_book",                 # docs/_ext/numpyvae_book.py: eq. (n*) links, CLI help, handouts, projection
]

# notebooks: rendered from their stored outputs, never executed by the build
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"

html_theme = "sphinx_book_theme"
html_title = f"numpyvae {release}"
html_static_path = ["_static"]        # relative to docs/
html_css_files = ["numpyvae-book.css"]
html_js_files = ["numpyvae-book.js"]
html_extra_path = ["_root"]      # index.html at the site's root, pointing to docs/index.html, and favicon.ico
# (that redirect page names no icon, so a browser may ask for /favicon.ico: headless Chromium did, once)
html_theme_options = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "use_issues_button": False,
    "navigation_with_keys": False,
    "search_bar_text": "Search the book",
}
html_last_updated_fmt = None
# the theme's colour mode when the reader has chosen none (without it the theme logs a console error)
html_context = {"default_mode": "auto"}
html_copy_source = True            # the download button offers each page's source (a handout's .ipynb)
html_show_sourcelink = False
html_favicon = "_static/favicon.svg"
