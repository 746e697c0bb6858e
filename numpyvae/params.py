"""A model's parameters as a read-only mapping of its live arrays.

``model.params[name]`` is the very array the forward pass uses: writing into
it (``model.params[name][...] = value``) changes the model, and every reader
(the optimizer, ``save_model``) sees the change.  Assigning a new array to a
name (``model.params[name] = value``) would change what the checkpoint saves
but not what the forward pass computes, so it is refused with an InputError
that says how to do it; so are deleting and adding names.
"""
from .errors import InputError


class Params(dict):
    """name -> live parameter array, in the model's order; entries are changed in place, never replaced."""

    def _refuse(self, *args, **kwargs):
        raise InputError("params: a model's params are its live arrays and cannot be replaced, added or "
                         "removed (the forward pass would not see a new array); write into one in place, "
                         "model.params[name][...] = value")

    __setitem__ = __delitem__ = pop = popitem = clear = update = setdefault = __ior__ = _refuse

    def __reduce__(self):              # copy and deepcopy rebuild it from its items (not by __setitem__)
        return type(self), (list(self.items()),)

    def copy(self):
        """A plain dict of the same arrays (not copies of them)."""
        return dict(self)
