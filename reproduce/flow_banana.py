"""Planar flows fitted to a known 2-D density (a banana), judged by a KL computed by quadrature.

    python reproduce/flow_banana.py [--iterations 6000] [--seeds 0 1] [--quick]

The target: z_1 ~ N(0, 1), z_2 | z_1 ~ N(z_1^2, 0.5^2) (numpyvae/flow_fit.py's
Banana).  For K in {2, 8, 32} planar steps (and the base Gaussian's mean and
log-variance), Adam minimizes the reverse KL estimated with 256 samples
(derivations/13-planar-flows.md, (13.10)); the schedule is the same for every K,
fixed in advance: lr 1e-2, then 1e-3 for the last third.  The result is then
judged independently of the training objective: q_K is evaluated on a grid by
inverting the flow and KL(q_K || p) summed by quadrature (with q_K's mass on
the grid, which must be 1).  The best diagonal Gaussian is known in closed form
((13.11)-(13.12)), and its KL is checked by the same quadrature.

Writes reproduce/results/flow_banana/ (result.json, table.md, densities.png).
``--quick`` (the test suite runs it): K in {2, 8}, 1000 iterations, a coarse
grid, one seed; its numbers are not the committed ones.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Clock, command_line, log, machine, markdown_table, results_dir, write_result  # noqa: E402
from numpyvae import flow_fit  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iterations", type=int, default=6000)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, nargs="+", default=[2, 8, 32])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.iterations, args.seeds, args.steps = 1000, [0], [2, 8]
    out = results_dir("flow_banana" + ("_quick" if args.quick and args.out is None else ""), args.out)
    clock = Clock()
    target = flow_fit.Banana(a=1.0, s=0.5)
    n = (91, 151) if args.quick else (361, 601)
    points, cell = flow_fit.grid(n=n)
    m, v, kl_gauss = target.best_diagonal_gaussian()
    log_q_gauss = -0.5 * np.sum(np.log(2 * np.pi * np.array(v)) + (points - m) ** 2 / np.array(v), axis=-1)
    kl_gauss_quad, mass_gauss = flow_fit.kl_by_quadrature(target, log_q_gauss, points, cell)
    log(f"best diagonal Gaussian: m = {m}, v = {v}: KL {kl_gauss:.4f} closed form, {kl_gauss_quad:.4f} by quadrature")
    runs, densities = [], {}
    for K in args.steps:
        for seed in args.seeds:
            params, history = flow_fit.fit(target, K, np.random.default_rng(seed), iterations=args.iterations,
                                           samples=args.samples, lr=1e-2, record_every=max(1, args.iterations // 20))
            log_q = flow_fit.log_density_on(points, params)
            kl, mass = flow_fit.kl_by_quadrature(target, log_q, points, cell)
            last = float(np.mean([h[1] for h in history[-5:]]))
            log(f"K = {K:2d}, seed {seed}: KL by quadrature {kl:.4f} (mass on the grid {mass:.6f}); "
                f"training estimate (last records) {last:.4f}")
            runs.append(dict(K=K, seed=seed, kl_quadrature=kl, mass=mass, kl_training_estimate_last=last,
                             history=history))
            if seed == args.seeds[0]:
                densities[K] = log_q
    table_rows = [["best diagonal Gaussian (closed form)", f"{kl_gauss:.4f}", "-", "-"]]
    for K in args.steps:
        kls = [r["kl_quadrature"] for r in runs if r["K"] == K]
        table_rows.append([f"planar flow, K = {K}", f"{np.mean(kls):.4f}",
                           ", ".join(f"{x:.4f}" for x in kls), f"{min(r['mass'] for r in runs if r['K'] == K):.6f}"])
    table = markdown_table(["q", "KL(q \\|\\| p), mean over seeds (nats)", "per seed", "least mass of q on the grid"],
                           table_rows)
    notes = (f"Target: z1 ~ N(0, 1), z2 | z1 ~ N(z1^2, 0.5^2). KL by quadrature on a {n[0]} x {n[1]} grid over "
             f"[-4.5, 4.5] x [-3, 12], q_K evaluated by inverting the flow. Adam, {args.iterations} iterations of "
             f"{args.samples} samples, lr 1e-2 then 1e-3 for the last third; seeds {args.seeds}. "
             f"The best diagonal Gaussian's KL by the same quadrature: {kl_gauss_quad:.4f}.")
    result = dict(command=command_line(), machine=machine(), wall_seconds=clock.seconds(), quick=args.quick,
                  target=dict(a=1.0, s=0.5), grid=dict(n=list(n), lo=[-4.5, -3.0], hi=[4.5, 12.0]),
                  best_diagonal_gaussian=dict(m=list(m), v=list(v), kl_closed_form=kl_gauss,
                                              kl_quadrature=kl_gauss_quad, mass=mass_gauss),
                  iterations=args.iterations, samples=args.samples, runs=runs)
    write_result(out, result, table, notes)
    plot(out, target, points, n, log_q_gauss, densities)
    return result


def plot(out, target, points, n, log_q_gauss, densities):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("target p", target.log_prob(points)), ("best diagonal Gaussian", log_q_gauss)]
    panels += [(f"planar flow, K = {K}", lq) for K, lq in densities.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.4), sharey=True)
    extent = (points[:, 0].min(), points[:, 0].max(), points[:, 1].min(), points[:, 1].max())
    for ax, (title, lq) in zip(axes, panels):
        ax.imshow(np.exp(lq).reshape(n).T, origin="lower", extent=extent, aspect="auto", cmap="viridis")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("z1")
        ax.set_ylim(-3, 8)
    axes[0].set_ylabel("z2")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "densities.png"), dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
