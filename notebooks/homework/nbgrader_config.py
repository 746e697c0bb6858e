"""nbgrader configuration for the numpyvae homework (copy it into the course directory).

The masters carry nbgrader's cell metadata (solution cells, autograded test cells with points,
hidden tests); this file adds one step to ``nbgrader generate_assignment``: the cells tagged
"master-only" (notes to the lecturer) are removed from the release version.  Tested by
tests/test_nbgrader.py with nbgrader from PyPI (pip install "numpyvae[grading]").
"""
from nbconvert.preprocessors import TagRemovePreprocessor
from nbgrader.converters import GenerateAssignment

c = get_config()  # noqa: F821 (defined by traitlets when nbgrader loads this file)
c.GenerateAssignment.preprocessors = ([TagRemovePreprocessor]
                                      + list(GenerateAssignment.class_traits()["preprocessors"].default()))
c.TagRemovePreprocessor.remove_cell_tags = {"master-only"}
c.TagRemovePreprocessor.enabled = True
