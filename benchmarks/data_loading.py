"""Start-up time and data time per iteration of the trainer's DataLoader under three worker start methods.

    python benchmarks/data_loading.py [--iters 40] [--workers 2] [--batch 8] [--repeats 3]

The loader is srgan's on the CPU path (the course degradation of full 512x512 GT in the workers) over the
sample data, after the main process has used OpenCV's thread pool as the trainer does (bicubic baseline
of the val set). Start-up is the time from ``iter(loader)`` to the first batch; data s/it is the mean wait
for each later batch with the main process doing nothing else, i.e. what the workers deliver.

- fork, pool stopped: the kit's choice (:func:`facesr.data.workers.iterate`);
- forkserver: a clean server process that imports the kit once, workers forked from it;
- spawn: a new interpreter per worker.

Each method runs in its own subprocess (a forkserver is one per process). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

METHODS = ("fork, pool stopped", "forkserver", "spawn")


def _measure(method: str, iters: int, workers: int, batch: int) -> dict:
    import multiprocessing

    from facesr.data.datasets import TrainDataset
    from facesr.data.sample import ensure_sample_data
    from facesr.data.workers import iterate, make_loader
    from facesr.report.tables import bicubic_scores
    from facesr.training.schedule import IterationBatchSampler

    root = ensure_sample_data()
    bicubic_scores(root)  # the main process uses OpenCV's pool, as the trainer's bicubic baseline does
    dataset = TrainDataset(root / "train" / "GT", seed=0)
    sampler = IterationBatchSampler(len(dataset), batch, 0, 0, iters + 1)
    kwargs = {}
    if method != METHODS[0]:
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            context.set_forkserver_preload(["facesr.data.datasets"])
        kwargs["multiprocessing_context"] = context
    loader = make_loader(dataset, workers, batch_sampler=sampler, **kwargs)
    t0 = time.perf_counter()
    batches = iterate(loader, "the benchmark data")
    next(batches)
    start_up = time.perf_counter() - t0
    waits = []
    for _ in range(iters):
        t = time.perf_counter()
        next(batches)
        waits.append(time.perf_counter() - t)
    return {"start_up": start_up, "data": statistics.mean(waits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)  # a subprocess measuring one method
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_measure(args.one, args.iters, args.workers, args.batch)))
        return
    print(f"srgan's CPU loader: {args.workers} workers, batch {args.batch}, {args.iters} iterations, "
          f"median of {args.repeats} runs")
    print(f"{'start method':<20}  {'start-up':>9}  {'data s/it':>10}")
    for method in METHODS:
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, __file__, "--one", method, "--iters", str(args.iters),
                                  "--workers", str(args.workers), "--batch", str(args.batch)],
                                 check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        start_up = statistics.median(r["start_up"] for r in runs)
        data = statistics.median(r["data"] for r in runs)
        print(f"{method:<20}  {start_up:>8.2f}s  {data:>9.3f}s")


if __name__ == "__main__":
    main()
