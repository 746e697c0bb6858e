"""One progress bar for training epochs, downloads and long evaluations.

It draws a single line on stderr, redrawn in place with a carriage return,
only when stderr is a terminal (a log file would fill with frames): pass
``enabled=True`` to force it, ``False`` to silence it, or leave ``None``.
A long job (``log_every`` seconds) that is not on a terminal instead writes
a whole line now and then, with the time left, so a log shows it is alive.
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
    log_every : seconds; when given, enabled is None and stderr is not a
              terminal, a line "label: done/total (p%), x elapsed, about y
              left" is written every log_every seconds instead of the bar.
    eta     : show the time left (from the rate so far) after the count.
    """

    def __init__(self, total, label, enabled=None, width=30, log_every=None, eta=False):
        self.total, self.label, self.width = total, label, width
        self.enabled = stderr_is_terminal() if enabled is None else bool(enabled)
        self.log_every = log_every if enabled is None and not self.enabled else None
        self.eta = eta or self.log_every is not None
        self._start = self._last = time.perf_counter()
        if self.log_every is None:
            self._last = 0.0
        self._drawn = 0

    def update(self, done, info=""):
        """Redraw with ``done`` units finished (throttled; the last update always draws)."""
        now = time.perf_counter()
        if self.log_every is not None:
            if now - self._last >= self.log_every and (self.total is None or done < self.total):
                self._last = now
                share = f" ({100 * done / self.total:.1f}%)" if self.total else ""
                total = f"{self.total:,}" if self.total else "?"
                self._write(f"{self.label}: {done:,}/{total}{share}{self._times(done, now)} {info}"
                            .rstrip() + "\n")
            return
        finished = self.total is not None and done >= self.total
        if not self.enabled or (now - self._last < 0.1 and not finished):
            return
        self._last = now
        if self.total:
            filled = int(self.width * min(done, self.total) / self.total)
            line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total}"
            line += (self._times(done, now) if self.eta else "") + f" {info}"
        else:
            line = f"{self.label} {done} {info}"
        self._write("\r" + line.ljust(self._drawn))
        self._drawn = len(line)

    def _times(self, done, now):
        """", 1 min 5 s elapsed, about 3 min left" from the rate so far."""
        elapsed = now - self._start
        text = f", {_duration(elapsed)} elapsed"
        if self.total and done > 0:
            text += f", about {_duration(elapsed * (self.total - done) / done)} left"
        return text

    def close(self):
        """Erase the bar's line."""
        if self.enabled and self._drawn:
            self._write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    @staticmethod
    def _write(text):
        """Write to stderr; a closed or broken stderr must not stop the work."""
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _duration(seconds):
    """'42 s', '3 min 5 s', '2 h 10 min'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
