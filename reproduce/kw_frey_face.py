"""Kingma & Welling (2013) Fig. 2, Frey Face: the training bound at 10^7 (and 10^8) samples.

    NUMPYVAE_DATA=../shared/data python reproduce/kw_frey_face.py [--samples 1e7] [--quick]

Architecture: 560-200-Nz encoder, Nz-200-560 decoder, tanh, Gaussian decoder
whose mean is squashed by a sigmoid, a log-variance per pixel (see kw_fig2.py
for the shared setting).  Data: numpyvae's seeded split of the 1,965 faces,
1,565 train / 200 valid (unused) / 200 test, grey levels scaled to [0, 1].
The paper's training bounds are read off its Fig. 2 (to about +-1 nat).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Clock, load, log, markdown_table, results_dir, write_result  # noqa: E402
import kw_fig2  # noqa: E402

# training bound per Nz read off Fig. 2 (Frey Face panels), nats per example
PAPER = {10 ** 7: {2: 835, 5: 1076, 10: 1217, 20: 1255},
         10 ** 8: {2: 934, 5: 1233, 10: 1462, 20: 1488}}
ARCH = dict(hidden=[200], likelihood="gaussian", model_kwargs=dict(gaussian_mean="sigmoid"))


def variant(weight_decay, init_std, n_train):
    """What a run changed from the default setting, for the plot's title ("" when nothing)."""
    changes = [f"weight decay {weight_decay:g}" if weight_decay else "",
               f"initial std {init_std:g}" if init_std != 0.01 else "",
               f"{n_train:,} training faces" if n_train != 1565 else ""]
    return "".join(f"\n{c}" for c in changes if c)


def main(argv=None):
    p = kw_fig2.arguments(__doc__, "kw_frey_face", z_dims=[2, 5, 10, 20], pick_steps=1000)
    p.add_argument("--train-valid", action="store_true",
                   help="train on the 1,565 training and the 200 validation faces (1,765)")
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.z_dims, args.pick_steps = 3e4, [2], 20
    clock = Clock()
    out = results_dir("kw_frey_face" + ("_quick" if args.quick else ""), args.out)
    data = load("frey-face")
    x_train = np.concatenate([data.x_train, data.x_valid]) if args.train_valid else data.x_train
    results = kw_fig2.train_all(args, x_train, data.x_test, x_train, ARCH)

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
    result = dict(paper=PAPER, results={str(k): v for k, v in results.items()}, n_train=len(x_train),
                  **kw_fig2.settings(args, clock))
    kw_fig2.plot(results, PAPER, "Kingma & Welling Fig. 2, Frey Face (ours: lines; paper: circles)"
                 + variant(args.weight_decay, args.init_std, len(x_train)), os.path.join(out, "curves.png"))
    write_result(out, result, table, notes)
    log(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
