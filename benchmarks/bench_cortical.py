#!/usr/bin/env python
"""One part of a 37,500-neuron V1 sheet: spikeforge's streamed CSR export against the
modelling group's algorithm (a dense uint8 (images, neurons, blank + image) array filled
neuron by neuron, then transposed to CSR and saved) on the same mock datastore.

Run from anywhere:  python benchmarks/bench_cortical.py [--images 100] [--neurons 37500]

The mock datastore (written first, not timed) has the sheet's real size, 100 images a part,
150 ms blanks and 560 ms images, and rates lognormal around 3 Hz (V1 layer 4 excitatory
cells), gained per image. Both exporters read it through the same stand-in unpickler, so the
comparison is the conversion; a separate line compares that reader with building neo objects
(what Mozaik's own loader does) on one segment, and extrapolates to the part.

Each run is a fresh process: imports first, then the peak resident memory is reset
(/proc/self/clear_refs); "extra memory" is the peak above the process before the run. The
reading alone (iterating the presentations) is timed too, so the conversion's share shows.
"""

# ruff: noqa: E402
from benchlib import one_blas_thread

one_blas_thread()

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from benchlib import cpu_model, loadavg, peak_rss_kb, reset_peak_rss

SHEET = "V1_Exc_L4"
PART = 50_000


def original(folder: Path, out: Path, images: int) -> None:
    """The group's export script's algorithm on spikeforge's reader."""
    from scipy.sparse import csr_matrix, save_npz

    from spikeforge.cortical.parts import DatastorePart

    source = DatastorePart(folder, SHEET)
    spikes = None
    for k, p in enumerate(source.presentations(0)):
        if k == images:
            break
        if spikes is None:
            blank = int(p.blank_ms) + 1
            spikes = np.zeros((images, p.neuron_ids.size, blank + int(p.image_ms) + 1), np.uint8)
        for j, (b, i) in enumerate(zip(p.blank_times, p.image_times, strict=True)):
            spikes[k, j, b.astype(int)] += 1
            spikes[k, j, i.astype(int) + blank] += 1
    n = spikes.shape[1]
    save_npz(out / "original.npz", csr_matrix(spikes.transpose(1, 0, 2).reshape(n, -1)))


def worker(kind: str, folder: Path, out: Path, images: int) -> dict:
    import scipy.sparse  # noqa: F401

    from spikeforge.cortical.export import export_part
    from spikeforge.cortical.parts import DatastorePart

    before = peak_rss_kb()
    reset_peak_rss()
    start = time.perf_counter()
    if kind == "original":
        original(folder, out, images)
    elif kind == "spikeforge":
        settings = {"sheet": SHEET, "part": str(PART), "trials": None, "bin_ms": 1,
                    "images": images, "compressed": True, "windows": None,
                    "source": "datastore"}  # fmt: skip
        export_part(settings, folder, out)
    else:  # reading only
        for k, _ in enumerate(DatastorePart(folder, SHEET).presentations(0)):
            if k + 1 == images:
                break
    return {"seconds": time.perf_counter() - start, "extra_mb": (peak_rss_kb() - before) / 1024}


def run(kind: str, folder: Path, images: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench_cortical_"))
    try:
        cmd = [sys.executable, __file__, "--worker", kind, str(folder), str(out), str(images)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(f"{kind} failed:\n{result.stderr}")
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        if kind != "read":
            from scipy.sparse import load_npz

            written = next(out.rglob("*.npz"))
            figures["matrix"] = load_npz(written)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return figures


def reader_comparison(folder: Path) -> tuple[float, float]:
    from spikeforge.cortical import mozaik

    record = [r for r in mozaik.read_datastore(folder) if not r.null][0]
    start = time.perf_counter()
    mozaik.load_trains(folder, record)
    light = time.perf_counter() - start
    start = time.perf_counter()
    mozaik.load_trains_with_neo(folder, record)
    return light, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--neurons", type=int, default=37_500)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, folder, out, images = args.worker
        print(json.dumps(worker(kind, Path(folder), Path(out), int(images))))
        return
    from spikeforge.cortical.mock import MockSpec, write_part

    print(f"machine: {cpu_model()}, load {loadavg()}")
    root = Path(tempfile.mkdtemp(prefix="bench_cortical_data_"))
    try:
        start = time.perf_counter()
        spec = MockSpec(neurons={SHEET: args.neurons}, images=args.images, seed=2026)
        folder = write_part(spec, root, PART)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e9
        print(f"mock part: {args.neurons:,} neurons x {args.images} images, {size:.2f} GB of "
              f"pickles, written in {time.perf_counter() - start:.0f} s")  # fmt: skip
        rows = {}
        for images in (args.images // 4, args.images):
            for kind in ("read", "original", "spikeforge"):
                rows[(kind, images)] = run(kind, folder, images)
        for images in (args.images // 4, args.images):
            read = rows[("read", images)]["seconds"]
            a, b = rows[("original", images)], rows[("spikeforge", images)]
            same = (a["matrix"] != b["matrix"]).nnz
            print(f"{images} images (reading alone {read:.1f} s):")
            for kind, fig in (("original", a), ("spikeforge", b)):
                conversion = fig["seconds"] - read
                print(f"  {kind:10s} {fig['seconds']:7.1f} s  conversion {conversion:7.1f} s  "
                      f"extra memory {fig['extra_mb']:7.0f} MB")  # fmt: skip
            print(f"  ratio: {a['seconds'] / b['seconds']:.1f}x in all, "
                  f"{(a['seconds'] - read) / max(b['seconds'] - read, 1e-3):.1f}x for the "
                  f"conversion; cells that differ: {same} (the original counts two spikes in "
                  f"one ms once)")  # fmt: skip
        light, neo_seconds = reader_comparison(folder)
        segments = 2 * args.images
        print(f"reading one segment: stand-ins {light:.2f} s, neo objects {neo_seconds:.1f} s"
              " "
              f"({neo_seconds / light:.0f}x); extrapolated to the part's {segments} segments: "
              f"{light * segments:.0f} s against "
              f"{neo_seconds * segments / 60:.0f} min")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load after: {loadavg()}")


if __name__ == "__main__":
    main()
