"""Kingma & Welling (2013) Fig. 2, Frey Face: the training bound at 10^7 (and 10^8) samples.

    NUMPYVAE_DATA=../shared/data python reproduce/kw_frey_face.py [--samples 1e7] [--quick]

Architecture: 560-200-Nz encoder, Nz-200-560 decoder, tanh, Gaussian decoder
whose mean is squashed by a sigmoid, a log-variance per pixel (see kw_fig2.py
for the shared setting).  Data: numpyvae's seeded split of the 1,965 faces,
1,565 train / 200 valid (unused) / 200 test, grey levels scaled to [0, 1].
The paper's training bounds are read off its Fig. 2 (to about +-1 nat).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Clock, command_line, load, log, machine, markdown_table, results_dir, write_result  # noqa: E402
import kw_fig2  # noqa: E402

# training bound per Nz read off Fig. 2 (Frey Face panels), nats per example
PAPER = {10 ** 7: {2: 835, 5: 1076, 10: 1217, 20: 1255},
         10 ** 8: {2: 934, 5: 1233, 10: 1462, 20: 1488}}
ARCH = dict(hidden=[200], likelihood="gaussian", model_kwargs=dict(gaussian_mean="sigmoid"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=float, default=1e7, help="training samples to run to (default 1e7)")
    p.add_argument("--z-dims", type=int, nargs="+", default=[2, 5, 10, 20])
    p.add_argument("--pick-steps", type=int, default=1000, help="minibatches per step size when choosing it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=0.0, metavar="LAMBDA",
                   help="a N(0, I/LAMBDA) prior on the parameters; the paper's is N(0, I): 1 (default 0: none)")
    p.add_argument("--step-size", type=float, default=None,
                   help="use this Adagrad step size instead of picking one by the paper's rule")
    p.add_argument("--init-std", type=float, default=0.01,
                   help="standard deviation of the initial weights (the paper's N(0, 0.01) as a variance: 0.1)")
    p.add_argument("--train-valid", action="store_true",
                   help="train on the 1,565 training and the 200 validation faces (1,765)")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds) of the same code, for the tests")
    p.add_argument("--from-log", default=None, metavar="LOG",
                   help="no training: rebuild the table and plot from the log of a run (stopped early or not)")
    p.add_argument("--out", default=None, help="output folder (default reproduce/results/kw_frey_face[_quick])")
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.z_dims, args.pick_steps = 3e4, [2], 20
    clock = Clock()
    out = results_dir("kw_frey_face" + ("_quick" if args.quick else ""), args.out)
    data = load("frey-face")
    results = kw_fig2.results_from_log(args.from_log) if args.from_log else {}
    x_train = np.concatenate([data.x_train, data.x_valid]) if args.train_valid else data.x_train
    for z_dim in ([] if args.from_log else args.z_dims):
        if args.step_size:
            lr, scores = args.step_size, {}
        else:
            lr, scores = kw_fig2.pick_step_size(x_train, z_dim, ARCH, args.pick_steps, args.seed, args.weight_decay,
                                                args.init_std)
        rows, _ = kw_fig2.curve(x_train, data.x_test, z_dim, lr, ARCH, int(args.samples), args.seed,
                                x_train, args.weight_decay, args.init_std)
        results[z_dim] = dict(step_size=lr, step_size_scores={str(k): v for k, v in scores.items()}, curve=rows)

    table_rows = []
    for z_dim, res in results.items():
        last = res["curve"][-1]
        paper = PAPER.get(10 ** 7 if args.samples <= 1e7 else 10 ** 8, {}).get(z_dim)
        diff = last["train_bound"] - paper if paper else float("nan")
        table_rows.append([z_dim, res["step_size"], f"{last['samples']:.3g}", f"{last['train_bound']:.1f}",
                           paper, f"{diff:+.1f} ({100 * diff / paper:+.1f}%)" if paper else "",
                           f"{last['test_bound']:.1f}"])
    table = markdown_table(["Nz", "Adagrad step", "samples", "ours, train bound", "paper, train bound (Fig. 2)",
                            "ours - paper", "ours, test bound"], table_rows)
    notes = (f"Train bound on all {len(x_train):,} training faces, test bound on the 200 test faces; one z sample, "
             "analytic KL, nats per example (a density on [0, 1]^560, so positive).")
    result = dict(paper=PAPER, results={str(k): v for k, v in results.items()}, samples=args.samples,
                  weight_decay=args.weight_decay, n_train=len(x_train), init_std=args.init_std,
                  quick=args.quick, command=command_line(),
                  wall_seconds=kw_fig2.log_span(args.from_log) if args.from_log else clock.seconds(), machine=machine())
    kw_fig2.plot(results, PAPER, "Kingma & Welling Fig. 2, Frey Face (ours: lines; paper: circles)",
                 os.path.join(out, "curves.png"))
    write_result(out, result, table, notes)
    log(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
