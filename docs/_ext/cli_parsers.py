"""The argparse parser a command's ``main`` builds, caught as it parses (nothing runs).

Used by the book (docs/_ext/numpyvae_book.py: the command line's reference) and by
tests/test_readme.py (every command on a page must parse); no Sphinx needed.
"""
import importlib


def parser_of(module_name, argv=()):
    """The argparse parser that ``MODULE.main(argv)`` builds (caught as it parses; nothing runs)."""
    import argparse

    module = importlib.import_module(module_name)
    caught = []

    class Caught(Exception):
        pass

    original = argparse.ArgumentParser.parse_args

    def catch(self, *args, **kwargs):
        caught.append(self)
        raise Caught

    argparse.ArgumentParser.parse_args = catch
    try:
        module.main(list(argv))
    except Caught:
        pass
    finally:
        argparse.ArgumentParser.parse_args = original
    if not caught:
        raise RuntimeError(f"{module_name}.main() built no argparse parser")
    return caught[0]
