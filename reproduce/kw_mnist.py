"""Kingma & Welling (2013) Fig. 2, MNIST: the train and test bound at 10^7 samples.

    NUMPYVAE_DATA=../shared/data python reproduce/kw_mnist.py [--samples 1e7] [--quick]

Architecture: 784-500-Nz encoder, Nz-500-784 decoder, tanh, Bernoulli decoder
(see kw_fig2.py for the shared setting).  Data: the official 60,000 training
and 10,000 test images, grey levels in [0, 1] used as Bernoulli targets (the
paper states no binarization).  The training bound is measured on the first
10,000 training images, the test bound on all 10,000 test images.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Clock, load, log, markdown_table, results_dir, write_result  # noqa: E402
import kw_fig2  # noqa: E402

# (train, test) bound at 10^7 samples per Nz, read off Fig. 2 (MNIST panels), nats per example
PAPER = {3: (-138.3, -138.0), 10: (-107.7, -108.5), 20: (-104.2, -104.8)}
ARCH = dict(hidden=[500], likelihood="bernoulli")


def main(argv=None):
    args = kw_fig2.arguments(__doc__, "kw_mnist", z_dims=[3, 10, 20], pick_steps=500).parse_args(argv)
    data = load("mnist")
    x_train, x_test = data.x_train, data.x_test
    if args.quick:   # 3,000 / 1,000 images, Nz = 3, 2x10^4 samples
        args.samples, args.z_dims, args.pick_steps = 2e4, [3], 10
        x_train, x_test = x_train[:3000], x_test[:1000]
    clock = Clock()
    out = results_dir("kw_mnist" + ("_quick" if args.quick else ""), args.out)
    results = kw_fig2.train_all(args, x_train, x_test, x_train[:10000], ARCH)

    table_rows = []
    for z_dim, res in results.items():
        last = res["curve"][-1]
        p_train, p_test = PAPER.get(z_dim, (float("nan"), float("nan")))
        table_rows.append([z_dim, res["step_size"], f"{last['samples']:.3g}",
                           f"{last['train_bound']:.2f}", p_train, f"{last['train_bound'] - p_train:+.2f}",
                           f"{last['test_bound']:.2f}", p_test, f"{last['test_bound'] - p_test:+.2f}"])
    table = markdown_table(["Nz", "Adagrad step", "samples", "ours, train", "paper, train", "ours - paper",
                            "ours, test", "paper, test", "ours - paper"], table_rows)
    notes = "Lower bound (ELBO, one z sample, analytic KL) in nats per example; paper values read off Fig. 2."
    result = dict(paper={str(k): v for k, v in PAPER.items()}, results={str(k): v for k, v in results.items()},
                  **kw_fig2.settings(args, clock))
    kw_fig2.plot(results, {10 ** 7: {z: v[0] for z, v in PAPER.items()}},
                 "Kingma & Welling Fig. 2, MNIST (ours: lines; paper: markers)", os.path.join(out, "curves.png"),
                 paper_test={10 ** 7: {z: v[1] for z, v in PAPER.items()}})
    write_result(out, result, table, notes)
    log(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
