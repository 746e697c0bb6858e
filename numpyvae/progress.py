"""One progress bar for training epochs, downloads and long evaluations.

It draws a single line on stderr, redrawn in place with a carriage return,
only when stderr is a terminal (a log file would fill with frames): pass
``enabled=True`` to force it, ``False`` to silence it, or leave ``None``.
"""
import sys
import time


def stderr_is_terminal():
    """True when stderr is an interactive terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):   # replaced or closed stream
        return False


class ProgressBar:
    """``[#####.....] done/total info`` on stderr, redrawn at most 10 times a second.

    total   : the number of units (batches, bytes, images); None if unknown.
    label   : text before the bar.
    enabled : True, False, or None (= only when stderr is a terminal).
    """

    def __init__(self, total, label, enabled=None, width=30):
        self.total, self.label, self.width = total, label, width
        self.enabled = stderr_is_terminal() if enabled is None else bool(enabled)
        self._last = 0.0
        self._drawn = 0

    def update(self, done, info=""):
        """Redraw with ``done`` units finished (throttled; the last update always draws)."""
        now = time.perf_counter()
        finished = self.total is not None and done >= self.total
        if not self.enabled or (now - self._last < 0.1 and not finished):
            return
        self._last = now
        if self.total:
            filled = int(self.width * min(done, self.total) / self.total)
            line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} {info}"
        else:
            line = f"{self.label} {done} {info}"
        self._write("\r" + line.ljust(self._drawn))
        self._drawn = len(line)

    def close(self):
        """Erase the bar's line."""
        if self.enabled and self._drawn:
            self._write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    @staticmethod
    def _write(text):
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError):   # a closed or broken stderr must not stop the work
            pass
