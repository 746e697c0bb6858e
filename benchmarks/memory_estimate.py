"""Peak memory of `numpyvae train` against numpyvae.memory's estimate.

    python benchmarks/memory_estimate.py [--configs "--z-dim 50000" "--hidden 2000 2000" "--arch conv"]

Each configuration trains the digits for one epoch (float32, Adam, no
figures) in a subprocess; the peak resident memory of that subprocess
(getrusage's ru_maxrss) is printed beside the estimate the command line
checks against --max-memory, with the machine.
"""
import argparse
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile

from numpyvae.cli import DEFAULTS
from numpyvae.data import load
from numpyvae.memory import training_bytes
from numpyvae.vae import check_config


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["--z-dim 50000", "--hidden 2000 2000", "--z-dim 2"])
    args = p.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}")
    data = load("digits")
    d = DEFAULTS["digits"]
    for text in args.configs:
        argv = shlex.split(text)
        parsed = argparse.ArgumentParser()
        parsed.add_argument("--z-dim", type=int, default=d["z_dim"])
        parsed.add_argument("--hidden", type=int, nargs="+", default=d["hidden"])
        parsed.add_argument("--arch", default="mlp")
        ns = parsed.parse_args(argv)
        config = check_config(data.x_dim, ns.hidden, ns.z_dim, arch=ns.arch, image_shape=(1, *data.image_shape))
        estimate = training_bytes(config, "adam", max(d["batch_size"], min(1000, len(data.x_test))))
        with tempfile.TemporaryDirectory() as out:
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            proc = subprocess.run([sys.executable, "-m", "numpyvae", "train", "--out", out, "--force", "--epochs",
                                   "1", "--no-plots", "--quiet", "--max-memory", "1000", *argv],
                                  capture_output=True, text=True)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024      # KiB on Linux
        if proc.returncode:
            print(f"{text}: failed: {proc.stderr.strip()}")
            continue
        note = "" if peak > before * 1024 else " (peak not above an earlier run's: measure it alone)"
        print(f"{text:24s} measured peak {peak / 2**20:8.0f} MiB   estimate {estimate / 2**20:8.0f} MiB   "
              f"estimate/measured {estimate / peak:.2f}{note}")


if __name__ == "__main__":
    main()
