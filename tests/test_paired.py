"""Paired patch / Neuropixels chain (spikeforge.paired) on mock SPE-1 cells and real fixtures.

The mock cell is SpikeInterface's ground-truth generator on a Neuropixels 1.0 geometry with a
patch trace carrying one unit's action potentials, so spike detection and the template's peak
channel are checked against known truth; preprocessing, bad channels and templates against
SpikeInterface itself; the Arrow layout, metadata and npz keys against the original
conversion's. Real fixtures (../shared/data) skip with a message when absent.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import SHARED_DATA
from spikeforge.core.errors import InputError
from spikeforge.core.provenance import write_json
from spikeforge.io.mat import save_mat
from spikeforge.paired import (
    arrow,
    kernels,
    recordings,
    spe1,
    streaming,
    templates,
    truth,
)
from spikeforge.paired import (
    mock as mock_cells,
)
from spikeforge.paired.convert import convert
from spikeforge.paired.metadata import conversion_metadata, write_templates_npz

FS = spe1.NPX_SAMPLING_HZ
KILOSORT = SHARED_DATA / "kilosort"
SUMMARY_XLSX = SHARED_DATA / "spe1" / "Data Summary.xlsx"
OPENEPHYS = SHARED_DATA / "openephys_tiny" / "rawdata" / "sub-001" / "ses-001" / "ephys"
OPENEPHYS = OPENEPHYS / "Record Node 104"

# What the original conversion writes (its conversion_metadata.json, templates.npz, rows).
SEED_METADATA_KEYS = {
    "source_metadata",
    "template_metadata",
    "sampling_frequency",
    "num_units",
    "num_channels",
    "unit_peak_channel",
    "unit_locations_um",
    "gt_electrode_chan_idx",
    "bad_channel_ids",
    "n_spikes_total",
    "n_spikes_used_for_templates",
    "segment_duration_s",
    "train_fraction",
}
SEED_SOURCE_KEYS = {
    "mode",
    "dataset",
    "cell_id",
    "skip_seconds",
    "duration_s",
    "patch_sample_rate_hz",
    "preprocessing",
    "spike_source",
}
SEED_TEMPLATE_KEYS = {
    "extraction_method",
    "ms_before",
    "ms_after",
    "nbefore",
    "nafter",
    "n_spikes_total",
    "n_spikes_used",
    "n_out_of_bounds_discarded",
}
SEED_NPZ_KEYS = {"templates", "sampling_frequency", "probe_positions", "nbefore", "nafter"}
SEED_DATASET_DICT = {"splits": {"train": {"name": "train"}, "test": {"name": "test"}}}

# Worker processes of the streaming pass. Mutation testing sets 1: its test selection only
# sees the calls made in the test process itself.
TEST_JOBS = int(os.environ.get("SPIKEFORGE_TEST_JOBS", "2"))
SKIP_S = 1.0
SEGMENT_S = 0.55  # 5 s window -> 10 segments (9 of 0.55 s, the last 0.05 s): 8 train, 2 test
BAD_CHUNKS = 8


def hf_home_snapshot() -> set[str]:
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return {str(p) for p in home.rglob("*")} if home.exists() else set()


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real fixture not found at {path} (../shared/data absent)")
    return path


@pytest.fixture(scope="session")
def mock(tmp_path_factory):
    root = tmp_path_factory.mktemp("spe1")
    cell = mock_cells.write_mock_spe1_cell(root, "m1", duration_s=6.0, seed=5, firing_rate_hz=20.0)
    return SimpleNamespace(root=root, cell=cell)


@pytest.fixture(scope="session")
def chain(mock, tmp_path_factory):
    """The whole chain on the mock cell, as a workflow job would run it."""
    hf_before = hf_home_snapshot()
    out = tmp_path_factory.mktemp("out") / "m1"
    channel_map = spe1.read_channel_map(mock.root / "chanMap.mat")
    summary = spe1.read_summary(mock.root / "Data Summary.xlsx")
    row = spe1.summary_row(summary, "m1")
    files = spe1.find_cell_files(mock.root / "Recordings" / "m1")
    recording = spe1.open_spe1_recording(files.npx_raw, channel_map)
    n_npx = recording.get_num_samples()
    start, end = recordings.analysis_window(n_npx, FS, SKIP_S, None)
    gt = truth.ground_truth_spikes(files, n_npx, spe1.patch_rate(row), start, end)
    result = convert(
        recording,
        start,
        end,
        gt.spike_rel,
        out,
        segment_s=SEGMENT_S,
        train_fraction=0.8,
        bad_channel_kwargs={"num_random_chunks": BAD_CHUNKS},
        job_kwargs={"n_jobs": TEST_JOBS},
    )
    template, bad, info = result.template, result.bad_channels, result.preprocess
    # The two-stage route (traces saved, then converted without filtering) as the reference:
    # the same chunks as the single pass.
    saved, saved_bad, saved_info = streaming.preprocess(
        recording,
        start,
        end,
        out.parent / "preprocessed",
        {"num_random_chunks": BAD_CHUNKS},
        {"chunk_size": int(SEGMENT_S * FS)},
    )
    metadata = conversion_metadata(
        cell_id="m1",
        skip_seconds=SKIP_S,
        duration_s=(end - start) / FS,
        patch_sample_rate_hz=spe1.patch_rate(row),
        spike_source=gt.spike_source,
        template_metadata=template.metadata,
        sampling_frequency=FS,
        num_channels=recording.get_num_channels(),
        peak_channel=template.peak_channel,
        gt_electrode_chan_idx=spe1.summary_channel(row),
        channel_locations=channel_map.locations,
        bad_channel_ids=bad,
        n_spikes_total=gt.spike_rel.size,
        segment_duration_s=SEGMENT_S,
        train_fraction=0.8,
        extra={"disconnected_channel_idx": np.flatnonzero(~channel_map.connected)},
    )
    write_json(out / "conversion_metadata.json", metadata)
    write_templates_npz(
        out / "templates.npz",
        template.templates,
        FS,
        channel_map.locations,
        template.metadata["nbefore"],
        template.metadata["nafter"],
    )
    return SimpleNamespace(
        out=out,
        channel_map=channel_map,
        recording=recording,
        start=start,
        end=end,
        gt=gt,
        saved=saved,
        bad=bad,
        info=info,
        saved_bad=saved_bad,
        saved_info=saved_info,
        template=template,
        export=result.export,
        hf_before=hf_before,
        summary_row=row,
    )


# --- ground truth -------------------------------------------------------------------------------


def match_fraction(found: np.ndarray, truth: np.ndarray, tolerance: int) -> float:
    """Fraction of `found` within `tolerance` samples of some element of `truth`."""
    if found.size == 0:
        return 0.0
    truth = np.sort(truth)
    i = np.clip(np.searchsorted(truth, found), 1, truth.size - 1)
    nearest = np.minimum(np.abs(found - truth[i - 1]), np.abs(found - truth[i]))
    return float(np.mean(nearest <= tolerance))


def test_patch_detection_recovers_ground_truth(mock):
    cell = mock.cell
    patch = truth.read_patch(cell.patch_path)
    detected = truth.detect_patch_spikes(patch, cell.patch_rate_hz)
    frames = truth.patch_to_npx(detected, cell.n_npx, cell.n_patch, 0, cell.n_npx)
    tolerance = int(0.4e-3 * FS)  # 0.4 ms
    assert cell.gt_frames.size >= 100
    precision = match_fraction(frames, cell.gt_frames, tolerance)
    recall = match_fraction(cell.gt_frames, frames, tolerance)
    assert precision >= 0.99 and recall >= 0.99, (precision, recall)


def test_window_restricts_and_rebases_spikes(mock, chain):
    expected = mock.cell.gt_frames[(mock.cell.gt_frames >= chain.start)] - chain.start
    assert chain.gt.spike_source == truth.SOURCE_PATCH_DETECTION
    assert match_fraction(chain.gt.spike_rel, expected, 12) >= 0.99
    assert abs(chain.gt.spike_rel.size - expected.size) <= 1


def test_long_patch_traces_are_detected_in_chunks_with_the_same_result(mock):
    patch = truth.read_patch(mock.cell.patch_path)
    whole = truth.detect_patch_spikes(patch, mock.cell.patch_rate_hz)
    chunked = truth.detect_patch_spikes(patch, mock.cell.patch_rate_hz, chunk_samples=40_001)
    np.testing.assert_array_equal(chunked, whole)
    # Close peaks on both sides of a chunk boundary: the distance rule still sees them all.
    rng = np.random.default_rng(3)
    trace = rng.standard_normal(200_000) * 0.01
    for position, depth in [(39_990, 1.0), (40_010, 1.2), (40_070, 0.9), (120_000, 1.0)]:
        trace[position] -= depth
    expected = truth.detect_patch_spikes(trace, 50_000.0)
    assert expected.tolist() == [40_010, 40_070, 120_000]
    np.testing.assert_array_equal(truth.detect_patch_spikes(trace, 50_000.0, 40_001), expected)


@pytest.mark.parametrize("n", [1, 2, 999, 1000])
@pytest.mark.parametrize("kind", ["normal", "ties", "constant"])
def test_streamed_median_is_exact(n, kind):
    rng = np.random.default_rng(n)
    values = {
        "normal": rng.standard_normal(n),
        "ties": rng.integers(0, 4, n).astype(float),
        "constant": np.full(n, 2.5),
    }[kind]
    for bins, limit in ((1 << 16, 1 << 20), (8, 5)):  # the second forces nested refinement

        def stream():
            return (values[i : i + 97] for i in range(0, n, 97))

        assert truth.median_streamed(stream, n, bins, limit) == np.median(values)


@pytest.mark.parametrize(
    "in_dtype, out_dtype",
    [("int16", "int16"), ("float32", "int16"), ("float32", "float32"), ("int16", "float32")],
)
@pytest.mark.parametrize("subset", [True, False])
def test_median_reference_is_spikeinterfaces_common_reference(in_dtype, out_dtype, subset):
    import spikeinterface.core as sc
    import spikeinterface.preprocessing as spre

    traces = (np.random.default_rng(3).standard_normal((5000, 12)) * 40).astype(in_dtype)
    reference = np.array([0, 2, 3, 5, 8, 11]) if subset else None
    recording = sc.NumpyRecording(traces, FS)
    ids = None if reference is None else list(recording.channel_ids[reference])
    expected = spre.common_reference(
        recording, reference="global", operator="median", ref_channel_ids=ids, dtype=out_dtype
    ).get_traces()
    got = kernels.median_reference(traces, reference, np.dtype(out_dtype))
    assert got.dtype == np.dtype(out_dtype)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("band", [(300.0, 3000.0), (500.0, 6000.0)])
def test_filtfilt_min_samples_is_scipys_limit(band):
    """The shortest trace scipy's sosfiltfilt accepts with spikeinterface's bandpass filter."""
    import scipy.signal
    import spikeinterface.core as sc
    import spikeinterface.preprocessing as spre

    silent = sc.NumpyRecording(np.zeros((100, 2), np.float32), FS)
    filtered = spre.bandpass_filter(silent, freq_min=band[0], freq_max=band[1])
    sos = filtered._recording_segments[0].coeff  # the coefficients spikeinterface applies
    shortest = kernels.filtfilt_min_samples(*band, FS)
    scipy.signal.sosfiltfilt(sos, np.ones(shortest))
    with pytest.raises(ValueError, match="padlen"):
        scipy.signal.sosfiltfilt(sos, np.ones(shortest - 1))


def test_recordings_the_pass_refuses_and_windows_at_the_end(caplog):
    import probeinterface
    import spikeinterface.core as sc

    def recording(n=20_000, probe=True, gains=True, connected=None):
        rec = sc.NumpyRecording(np.zeros((n, 4), np.int16), FS)
        if probe:
            probe = probeinterface.generate_linear_probe(4, ypitch=20)
            probe.set_device_channel_indices(np.arange(4))
            rec.set_probe(probe)  # in place
        if gains:
            rec.set_channel_gains(2.34)
            rec.set_channel_offsets(0.0)
        if connected is not None:
            rec.set_property("connected", np.array(connected))
        return rec

    refused = [
        (recording(probe=False), "recording: has no channel locations: give it a probe"),
        (recording(gains=False), "recording: has no gain_to_uV / offset_to_uV: cannot work in uV"),
    ]
    for rec, message in refused:
        with pytest.raises(InputError) as error:
            streaming.checked_window(rec, 0, None, 0, 300.0, 3000.0)
        assert str(error.value) == message
    with caplog.at_level(logging.WARNING, logger="spikeforge.paired"):
        assert streaming.checked_window(recording(), 100, 20_000, 0, 300.0, 3000.0)[1:] == (
            100, 20_000,
        )  # fmt: skip
    assert caplog.text == ""  # a window ending exactly at the end is not cut
    assert streaming._reference_channels(recording(connected=[True] * 4)) is None
    assert streaming._reference_channels(recording(connected=[1, 0, 1, 1])).tolist() == [0, 2, 3]
    with pytest.raises(InputError) as error:
        streaming._reference_channels(recording(connected=[False] * 4))
    assert str(error.value) == "channel map: no channel is connected"


def test_patch_to_npx_literal():
    # n_npx / n_patch = 0.6: samples 0, 10, 99 -> frames 0, 6, 59; window [5, 59) keeps 6.
    got = truth.patch_to_npx(np.array([0, 10, 99]), 60, 100, 5, 59)
    assert got.tolist() == [1]
    assert got.dtype == np.int64


def test_peak_detection_finds_the_ground_truth_units_spikes(mock, chain):
    """On the preprocessed mock traces, SpikeInterface peak detection on the ground-truth
    unit's peak channel recovers its spikes (the other units' spikes add a few more)."""
    gt_channel = mock.cell.gt_peak_channel
    frames, channel = truth.detect_peak_spikes(chain.saved, channel=gt_channel, seed=3)
    assert channel == gt_channel
    expected = mock.cell.gt_frames[mock.cell.gt_frames >= chain.start] - chain.start
    tolerance = int(0.5e-3 * FS)
    assert match_fraction(expected, frames, tolerance) >= 0.95
    assert match_fraction(frames, expected, tolerance) >= 0.7
    again, _ = truth.detect_peak_spikes(chain.saved, channel=gt_channel, seed=3)
    np.testing.assert_array_equal(frames, again)
    busiest, chosen = truth.detect_peak_spikes(chain.saved, seed=3)
    assert busiest.size >= frames.size
    assert (
        np.linalg.norm(
            chain.channel_map.locations[chosen] - chain.channel_map.locations[gt_channel]
        )
        < 100
        or busiest.size > frames.size
    )


def test_wc_spike_samples_are_authoritative_without_patch(mock, tmp_path, caplog):
    cell = mock.cell
    folder = tmp_path / "m1"
    folder.mkdir()
    os.symlink(cell.npx_path, folder / cell.npx_path.name)
    np.save(folder / "m1_wc_spike_samples.npy", cell.gt_patch_samples[::2])
    files = spe1.find_cell_files(folder)
    assert files.patch is None and files.wc_spike is not None
    with caplog.at_level(logging.WARNING, logger="spikeforge.paired"):
        gt = truth.ground_truth_spikes(files, cell.n_npx, cell.patch_rate_hz, 0, cell.n_npx)
    assert "no patch trace" in caplog.text
    assert gt.spike_source == truth.SOURCE_WC_SPIKES
    assert match_fraction(gt.spike_rel, cell.gt_frames[::2], 1) == 1.0


# --- preprocessing ------------------------------------------------------------------------------


def test_preprocess_is_the_spikeinterface_chain_saved_once(mock, chain):
    import spikeinterface.core as sc
    import spikeinterface.preprocessing as spre

    saved = sc.load(chain.out.parent / "preprocessed")
    n = chain.end - chain.start
    assert saved.get_num_samples() == n
    assert saved.get_dtype() == np.int16 and saved.is_filtered()
    np.testing.assert_array_equal(saved.get_channel_locations(), chain.channel_map.locations)
    np.testing.assert_array_equal(saved.get_channel_gains(), spe1.NPX_GAIN_UV)

    connected = chain.channel_map.connected
    bandpassed = spre.bandpass_filter(chain.recording, freq_min=300.0, freq_max=3000.0)
    bandpassed = bandpassed.frame_slice(chain.start, chain.end)
    lazy = spre.common_reference(
        bandpassed,
        reference="global",
        operator="median",
        ref_channel_ids=list(chain.recording.channel_ids[connected]),
    )
    data = templates.trace_array(saved)
    seg = int(SEGMENT_S * FS)
    for s0 in (0, 2 * seg, 9 * seg):  # same chunks as the pass: bit-identical
        np.testing.assert_array_equal(
            data[s0 : s0 + seg], lazy.get_traces(start_frame=s0, end_frame=min(s0 + seg, n))
        )

    # Bad channels: spikeinterface's detector with the same chunks gives the same labels; on
    # the mock they are the flat, unconnected reference sites.
    ids, labels = spre.detect_bad_channels(
        bandpassed, num_random_chunks=BAD_CHUNKS, seed=0, job_kwargs={"progress_bar": False}
    )
    assert chain.bad == chain.saved_bad == sorted(int(i) for i in ids)
    assert chain.info["channel_labels"] == [str(x) for x in labels]
    assert chain.saved_info["channel_labels"] == chain.info["channel_labels"]
    assert chain.bad == list(spe1.PHASE3A_REFERENCE_CHANNELS)
    assert chain.info["bad_channel_chunks"] == BAD_CHUNKS


def test_other_bad_channel_methods_and_bands_are_spikeinterfaces(chain, tmp_path):
    """A detector other than coherence+psd runs as spikeinterface's detect_bad_channels on the
    bandpassed window; another band is named in the metadata."""
    import spikeinterface.preprocessing as spre

    window = (chain.start, chain.start + int(2 * FS))
    _, bad, info = streaming.preprocess(
        chain.recording, *window, tmp_path / "pre", {"method": "std", "std_mad_threshold": 3.0},
        freq_min=400.0, freq_max=3000.0,
    )  # fmt: skip
    bandpassed = spre.bandpass_filter(chain.recording, freq_min=400.0, freq_max=3000.0)
    ids, labels = spre.detect_bad_channels(
        bandpassed.frame_slice(*window), method="std", std_mad_threshold=3.0,
        job_kwargs={"progress_bar": False},
    )  # fmt: skip
    channel_ids = list(chain.recording.channel_ids)
    assert bad == sorted(channel_ids.index(c) for c in ids)
    assert info["channel_labels"] == [str(x) for x in labels]
    assert info["preprocessing"] == "bandpass_400_3000Hz + global_CMR"
    assert info["bad_channel_method"] == "std"
    assert info["bad_channel_settings"]["std_mad_threshold"] == 3.0


def test_single_pass_equals_saving_then_converting(chain, tmp_path):
    """The pass that filters and exports at once writes the same files as converting the saved
    traces, and its template equals the one read back from them."""
    result = convert(
        chain.saved,
        0,
        None,
        chain.gt.spike_rel,
        tmp_path / "two_stage",
        segment_s=SEGMENT_S,
        train_fraction=0.8,
        preprocessed=True,
    )
    assert result.bad_channels == [] and result.preprocess == {}
    for name in ("train", "test"):
        ours = sorted(p.name for p in (chain.out / name).iterdir())
        assert ours == sorted(p.name for p in (tmp_path / "two_stage" / name).iterdir())
        for file_name in ours:
            a = (chain.out / name / file_name).read_bytes()
            assert a == (tmp_path / "two_stage" / name / file_name).read_bytes(), file_name
    reference = templates.peak_aligned_template(chain.saved, chain.gt.spike_rel, FS)
    np.testing.assert_array_equal(chain.template.templates, reference.templates)
    np.testing.assert_array_equal(result.template.templates, reference.templates)
    assert chain.template.metadata == reference.metadata
    assert chain.template.peak_channel == reference.peak_channel


def test_saved_traces_converted_over_a_shorter_window(chain, tmp_path):
    """A window that ends before the saved traces do exports only its own segments (the
    peak-detection route converts saved traces over the window the config names)."""
    import datasets

    segment = int(SEGMENT_S * FS)
    end = chain.saved.get_num_samples() - segment
    result = convert(
        chain.saved,
        0,
        end,
        chain.gt.spike_rel[chain.gt.spike_rel < end],
        tmp_path / "short",
        segment_s=SEGMENT_S,
        train_fraction=0.8,
        preprocessed=True,
    )

    def sample_ids(folder):
        return [
            row
            for split in ("train", "test")
            for row in datasets.load_from_disk(str(folder / split))["sample_id"]
        ]

    full = sample_ids(chain.out)
    assert sample_ids(tmp_path / "short") == full[:-1]
    assert result.template.metadata["n_spikes_total"] == int(np.sum(chain.gt.spike_rel < end))


def test_fast_filter_is_spikeinterface_filter_on_float_and_int32_traces():
    import spikeinterface.core as sc

    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.int32):
        values = rng.normal(2000.0, 300.0, size=(9000, 6))
        rec = with_probe(sc.NumpyRecording(values.astype(dtype), 30_000.0))
        plan = streaming.plan_pass(rec, 1000, 8000, {"method": None}, None, 0, 300.0, 3000.0)
        for a, b in ((0, 3000), (3000, 7000)):
            np.testing.assert_array_equal(
                kernels.bandpass_chunk(plan.filter_spec, a, b),
                plan.bandpassed.get_traces(start_frame=a, end_frame=b),
            )


def with_probe(recording):
    n = recording.get_num_channels()
    recording.set_dummy_probe_from_locations(np.c_[np.zeros(n), np.arange(n) * 20.0])
    recording.set_channel_gains(1.0)
    recording.set_channel_offsets(0.0)
    return recording


def test_window_past_end_is_refused_and_writes_nothing(chain, tmp_path):
    n = chain.recording.get_num_samples()
    with pytest.raises(InputError, match="analysis window"):
        recordings.analysis_window(n, FS, 60.0, 300.0)
    with pytest.raises(InputError, match="recording has"):
        streaming.preprocess(chain.recording, n + 10, None, tmp_path / "pre")
    assert not (tmp_path / "pre").exists() and not list(tmp_path.iterdir())


def test_window_running_past_end_is_cut_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="spikeforge.paired"):
        assert recordings.analysis_window(600_000, FS, 10.0, 300.0) == (300_000, 600_000)
    assert "past the end" in caplog.text


def test_unknown_bad_channel_option_is_an_input_error(chain, tmp_path):
    with pytest.raises(InputError, match="num_chunks"):
        streaming.preprocess(chain.recording, 0, 3000, tmp_path / "pre", {"num_chunks": 3})
    assert not (tmp_path / "pre").exists()


# --- templates ----------------------------------------------------------------------------------


def test_template_peak_channel_is_the_ground_truth_units(mock, chain):
    assert chain.template.peak_channel == mock.cell.gt_peak_channel
    assert spe1.summary_channel(chain.summary_row) == mock.cell.gt_peak_channel
    meta = chain.template.metadata
    assert set(meta) == SEED_TEMPLATE_KEYS
    assert (meta["nbefore"], meta["nafter"]) == (30, 60)
    assert meta["n_spikes_used"] + meta["n_out_of_bounds_discarded"] == chain.gt.spike_rel.size


def test_template_equals_spikeinterface_average(chain):
    import spikeinterface.core as sc
    from spikeinterface.core.base import minimum_spike_dtype

    n = chain.saved.get_num_samples()
    # Two spikes whose windows leave the data: counted, not used.
    spikes = np.concatenate([[5, n - 10], chain.gt.spike_rel]).astype(np.int64)
    result = templates.peak_aligned_template(chain.saved, spikes, FS, 1.0, 2.0, batch_size=7)
    assert result.metadata["n_out_of_bounds_discarded"] == 2
    assert result.metadata["n_spikes_used"] == spikes.size - 2
    kept = np.sort(spikes[2:])
    vector = np.zeros(kept.size, dtype=minimum_spike_dtype)
    vector["sample_index"] = kept
    reference = sc.estimate_templates(
        chain.saved, vector, [0], 30, 60, return_in_uV=False, progress_bar=False
    )
    np.testing.assert_allclose(result.templates, reference, rtol=1e-5, atol=1e-4)
    # A literal per-spike loop over the saved traces gives the same mean.
    data = templates.trace_array(chain.saved)
    literal = np.mean([data[s - 30 : s + 60].astype(np.float64) for s in kept], axis=0)
    np.testing.assert_allclose(result.templates[0], literal, rtol=1e-5, atol=1e-4)


def test_trace_array_maps_only_sample_major_one_file_binaries(tmp_path):
    import spikeinterface.core as sc
    from spikeinterface.preprocessing import scale

    data = np.arange(600, dtype=np.int16).reshape(100, 6)
    data.tofile(tmp_path / "a.bin")
    sample_major = sc.read_binary(tmp_path / "a.bin", FS, "int16", num_channels=6)
    np.testing.assert_array_equal(templates.trace_array(sample_major), data)
    channel_major = sc.read_binary(tmp_path / "a.bin", FS, "int16", num_channels=6, time_axis=1)
    for refused in (channel_major, scale(sample_major, gain=2.0)):
        with pytest.raises(ValueError, match="not a one-segment, one-file binary recording"):
            templates.trace_array(refused)


def test_template_needs_min_spikes(caplog):
    data = np.ones((1000, 4), dtype=np.int16)
    with caplog.at_level(logging.WARNING, logger="spikeforge.paired"):
        result = templates.peak_aligned_template(data, np.array([500]), FS, min_spikes=2)
    assert not result.templates.any() and result.peak_channel == 0
    assert result.metadata["n_spikes_used"] == 1 and "all zeros" in caplog.text


# --- export -------------------------------------------------------------------------------------


def seed_split(n_samples, seg_len, train_fraction):
    """The original conversion's split, literally."""
    segments = []
    for i in range(0, n_samples, seg_len):
        segments.append((i, min(i + seg_len, n_samples)))
    n_train = int(len(segments) * train_fraction)
    return segments[:n_train], segments[n_train:]


@pytest.mark.parametrize(
    "n, seg, frac", [(95, 10, 0.8), (100, 10, 0.8), (7, 3, 0.5), (1000, 90_000, 0.8), (3, 1, 0.9)]
)
def test_split_segments_as_seed(n, seg, frac):
    assert arrow.split_segments(n, seg, frac) == seed_split(n, seg, frac)


def test_split_ten_segments_eight_train_two_test():
    train, test = arrow.split_segments(95, 10, 0.8)
    assert len(train) == 8 and len(test) == 2 and test[-1] == (90, 95)


def test_arrow_splits_match_seed_layout(chain, tmp_path):
    from datasets import Dataset, DatasetDict, load_from_disk

    dd = load_from_disk(str(chain.out))
    assert isinstance(dd, DatasetDict) and set(dd) == {"train", "test"}
    assert (len(dd["train"]), len(dd["test"])) == (8, 2)
    assert json.loads((chain.out / "dataset_dict.json").read_text()) == SEED_DATASET_DICT

    # The schema datasets infers from a row shaped as the original conversion yields it.
    def seed_rows():
        yield {
            "sample_id": f"{0:010d}",
            "cit": [np.zeros(1, np.int32), np.zeros(0, np.int32)],
            "ctt": [np.array([1.5]), np.zeros(0, np.float64)],
            "cp": [np.zeros(3, np.float32), np.ones(3, np.float32)],
        }

    inferred = Dataset.from_generator(seed_rows, cache_dir=str(tmp_path / "hf")).features
    assert dd["train"].features == inferred == arrow.arrow_features()
    assert dd["train"].column_names == ["sample_id", "cit", "ctt", "cp"]

    seg = int(SEGMENT_S * FS)
    data = templates.trace_array(chain.saved)
    peak = chain.template.peak_channel
    sample_ids = list(dd["train"]["sample_id"]) + list(dd["test"]["sample_id"])  # one column
    assert sample_ids == [f"{s:010d}" for s in range(0, data.shape[0], seg)]
    spikes = np.sort(chain.gt.spike_rel)
    for k in (0, 9):  # first train row and the short last test row
        row = dd["train"][k] if k < 8 else dd["test"][k - 8]
        s0 = k * seg
        s1 = min(s0 + seg, data.shape[0])
        cp = np.asarray(row["cp"], dtype=np.float32)
        assert cp.shape == (384, s1 - s0)
        np.testing.assert_array_equal(cp, data[s0:s1].T.astype(np.float32))
        inside = spikes[(spikes >= s0) & (spikes < s1)]
        np.testing.assert_allclose(row["ctt"][peak], (inside - s0) / FS * 1000.0)
        assert row["cit"][peak] == [0] * inside.size
        assert all(len(c) == 0 for i, c in enumerate(row["cit"]) if i != peak)
        assert all(len(c) == 0 for i, c in enumerate(row["ctt"]) if i != peak)
    table = dd["train"].with_format("arrow")[:1]
    assert str(table.schema.field("cp").type) == "list<item: list<item: float>>"
    assert str(table.schema.field("cit").type) == "list<item: list<item: int32>>"
    assert str(table.schema.field("ctt").type) == "list<item: list<item: double>>"


def test_arrow_rows_keep_order_with_spikes_on_the_peak_channel(tmp_path):
    import spikeinterface.core as sc
    from datasets import load_from_disk

    traces = np.arange(1000 * 3, dtype=np.int16).reshape(1000, 3)
    recording = with_probe(sc.NumpyRecording(traces, 1000.0))
    result = convert(
        recording, 0, None, np.array([5, 150, 999]), tmp_path, segment_s=0.1, preprocessed=True
    )
    # Windows of 1 sample before, 2 after: spike 999 leaves the data; channel 2 is largest.
    assert result.template.peak_channel == 2
    np.testing.assert_array_equal(result.template.templates[0], (traces[4:7] + traces[149:152]) / 2)
    assert result.template.metadata["n_out_of_bounds_discarded"] == 1
    dd = load_from_disk(str(tmp_path))
    assert (len(dd["train"]), len(dd["test"])) == (8, 2)
    rows = list(dd["train"]) + list(dd["test"])
    assert [r["sample_id"] for r in rows] == [f"{s:010d}" for s in range(0, 1000, 100)]
    for k, row in enumerate(rows):
        np.testing.assert_array_equal(row["cp"], traces[k * 100 : (k + 1) * 100].T)
    assert rows[0]["ctt"] == [[], [], [5.0]] and rows[1]["ctt"] == [[], [], [50.0]]
    assert rows[9]["ctt"] == [[], [], [99.0]] and rows[9]["cit"] == [[], [], [0]]
    assert all(r["cit"] == [[], [], []] for r in rows[2:9])


def test_no_huggingface_cache_in_home(chain):
    assert hf_home_snapshot() == chain.hf_before
    leftovers = [p.name for p in chain.out.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_segment_plan_limits_name_the_config_key():
    from spikeforge.paired.arrow import MAX_LIST_VALUES, plan_segments

    train, test = plan_segments(10, FS, 1 / FS, 0.8, n_channels=4)  # one-sample segments
    assert (len(train), len(test)) == (8, 2) and train[0] == (0, 1)
    widest = MAX_LIST_VALUES // 384
    assert plan_segments(widest * 10, 1.0, widest, 0.8)[1] == [
        (widest * 8, widest * 9),
        (widest * 9, widest * 10),
    ]
    cases = [
        ((10, 1000.0, 0.0005, 0.8), "paired.segment_s: 0.0005 s is shorter than one sample"),
        ((10**10, 1.0, widest + 1, 0.8),
         f"paired.segment_s: {widest + 1} s x 384 channels exceeds an Arrow list's 2^31 values"),
        ((45_000, FS, 3.0, 0.8),
         "paired.segment_s: the window has 45,000 samples (1.5 s): 1 segment(s) of 3 s leave the "
         "train split empty (train fraction 0.8); use segments of at most 0.75 s or a longer "
         "window"),
        ((45_000, FS, 3.0, 1.0), "paired.train_fraction: 1.0 must be between 0 and 1"),
    ]  # fmt: skip
    for args, message in cases:
        with pytest.raises(InputError) as error:
            plan_segments(*args)
        assert str(error.value) == message


def test_split_leaving_a_split_empty_writes_nothing(chain, tmp_path):
    short = chain.saved.frame_slice(0, 45_000)  # 1.5 s: one 3 s segment
    with pytest.raises(InputError, match="train split empty"):
        convert(short, 0, None, chain.gt.spike_rel, tmp_path / "x", preprocessed=True)
    assert not (tmp_path / "x").exists()


def test_metadata_and_npz_keys_match_seed(chain):
    metadata = json.loads((chain.out / "conversion_metadata.json").read_text())
    assert SEED_METADATA_KEYS <= set(metadata)
    assert set(metadata["source_metadata"]) == SEED_SOURCE_KEYS
    assert set(metadata["template_metadata"]) == SEED_TEMPLATE_KEYS
    assert metadata["source_metadata"]["preprocessing"] == "bandpass_300_3000Hz + global_CMR"
    assert metadata["source_metadata"]["patch_sample_rate_hz"] == pytest.approx(50_023.9)
    assert metadata["unit_peak_channel"] == {"0": chain.template.peak_channel}
    gt = metadata["gt_electrode_chan_idx"]
    x, y = chain.channel_map.locations[gt]
    assert metadata["unit_locations_um"] == {"0": [float(x), float(y), 0.0]}
    assert metadata["bad_channel_ids"] == chain.bad
    assert metadata["n_spikes_used_for_templates"] == chain.template.metadata["n_spikes_used"]
    assert metadata["disconnected_channel_idx"] == list(spe1.PHASE3A_REFERENCE_CHANNELS)

    with np.load(chain.out / "templates.npz") as npz:
        assert set(npz.files) == SEED_NPZ_KEYS
        assert npz["templates"].shape == (1, 90, 384) and npz["templates"].dtype == np.float32
        assert npz["probe_positions"].shape == (384, 2)
        assert npz["probe_positions"].dtype == np.float32
        assert (int(npz["nbefore"]), int(npz["nafter"])) == (30, 60)
        assert float(npz["sampling_frequency"]) == FS


def test_metadata_without_summary_location():
    meta = conversion_metadata(**_minimal_meta())
    assert meta["unit_locations_um"] is None and meta["gt_electrode_chan_idx"] is None
    assert meta["num_units"] == 1
    first = conversion_metadata(**{**_minimal_meta(), "gt_electrode_chan_idx": 0,
                                   "channel_locations": np.array([[11.0, 20.0]])})  # fmt: skip
    assert first["unit_locations_um"] == {"0": [11.0, 20.0, 0.0]}
    with pytest.raises(ValueError, match="replace"):
        conversion_metadata(**{**_minimal_meta(), "extra": {"num_units": 2}})


def _minimal_meta():
    return dict(
        cell_id="x",
        skip_seconds=0,
        duration_s=1,
        patch_sample_rate_hz=None,
        spike_source="s",
        template_metadata={"n_spikes_used": 0},
        sampling_frequency=FS,
        num_channels=1,
        peak_channel=0,
        gt_electrode_chan_idx=None,
        channel_locations=np.zeros((1, 2)),
        bad_channel_ids=[],
        n_spikes_total=0,
        segment_duration_s=1.0,
        train_fraction=0.8,
    )


# --- mock cells -----------------------------------------------------------------------------


def test_mock_cell_is_deterministic_and_spe1_shaped(tmp_path):
    a = mock_cells.write_mock_spe1_cell(
        tmp_path / "a", "c7", duration_s=0.5, seed=2, write_wc_spikes=True
    )
    b = mock_cells.write_mock_spe1_cell(
        tmp_path / "b", "c7", duration_s=0.5, seed=2, write_wc_spikes=True
    )
    for name in ("c7_npx_raw.bin", "c7_patch_ch1.bin", "c7_wc_spike_samples.npy"):
        assert (a.cell_dir / name).read_bytes() == (b.cell_dir / name).read_bytes()
    assert (tmp_path / "a" / "chanMap.mat").read_bytes() == (
        tmp_path / "b" / "chanMap.mat"
    ).read_bytes()
    assert a.npx_path.stat().st_size == 15_000 * 384 * 2
    assert a.patch_path.stat().st_size == round(0.5 * 50_023.9) * 8
    row = spe1.read_summary(tmp_path / "a" / "Data Summary.xlsx")["c7"]
    assert row["chan_predicted"] == a.gt_peak_channel
    assert row["Patch Samp. Freq. (Hz)"] == pytest.approx(50_023.9)


# --- real fixtures ------------------------------------------------------------------------------


def test_real_phase3a_channel_map():
    cm = spe1.read_channel_map(require(KILOSORT / "neuropixPhase3A_kilosortChanMap.mat"))
    assert cm.n_channels == 384 and cm.locations.dtype == np.float32
    assert int(cm.connected.sum()) == 374
    assert tuple(np.flatnonzero(~cm.connected)) == spe1.PHASE3A_REFERENCE_CHANNELS
    np.testing.assert_array_equal(cm.locations[:4], [[43, 20], [11, 20], [59, 40], [27, 40]])
    np.testing.assert_array_equal(cm.locations, mock_cells.np1_geometry())
    b2 = spe1.read_channel_map(KILOSORT / "neuropixPhase3B2_kilosortChanMap.mat")
    assert np.flatnonzero(~b2.connected).tolist() == [191]
    assert spe1.read_channel_map(KILOSORT / "NP2_kilosortChanMap.mat").connected.all()


NPX_MAP = SHARED_DATA / "spe1" / "npx_map.csv"


def test_spe1_npx_map_csv():
    """SPE-1's own channel map (CR line ends): every channel once, the depths of Kilosort's
    Phase3A map, and Phase3A's ten reference channels unconnected (the csv has no flag)."""
    csv_map = spe1.read_channel_map(require(NPX_MAP))
    kilosort = spe1.read_channel_map(KILOSORT / "neuropixPhase3A_kilosortChanMap.mat")
    assert csv_map.n_channels == 384 and csv_map.locations.dtype == np.float32
    np.testing.assert_array_equal(csv_map.locations[:, 1], kilosort.locations[:, 1])
    assert sorted(set(csv_map.locations[:, 0].tolist())) == [11.0, 27.0, 43.0, 59.0]
    for row in range(0, 384, 2):  # two sites a row, 32 um apart, staggered by row
        assert abs(csv_map.locations[row, 0] - csv_map.locations[row + 1, 0]) == 32.0
    np.testing.assert_array_equal(csv_map.connected, kilosort.connected)
    only = spe1.read_channel_map(NPX_MAP, reference_channels=[5])
    assert np.flatnonzero(~only.connected).tolist() == [5]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_npx_map_csv_line_ends_and_bad_grids(tmp_path, newline):
    grid = [[-1, 2, -1, 3], [0, -1, 1, -1]]
    path = tmp_path / "map.csv"
    path.write_text(newline.join(",".join(map(str, row)) for row in grid) + newline)
    cm = spe1.read_npx_map_csv(path)
    np.testing.assert_array_equal(cm.locations, [[11, 20], [43, 20], [27, 40], [59, 40]])
    path.write_text("0,1\n1,-1\n")
    with pytest.raises(InputError, match="each of 0..n-1 once"):
        spe1.read_npx_map_csv(path)


def test_convert_cell_reports_unconnected_channels_the_detector_keeps(mock, tmp_path):
    """A channel named unconnected but carrying signal (channel 200) is in the bad list even
    though the detector's majority vote keeps it; the detector's own list stays apart."""
    from spikeforge.paired.cell import CellSettings, Spe1Source, convert_cell

    settings = CellSettings(
        cell="m1", skip_s=SKIP_S, duration_s=None, segment_s=SEGMENT_S, train_fraction=0.8,
        ms_before=1.0, ms_after=2.0, min_spikes=2,
        bad_channels={"num_random_chunks": BAD_CHUNKS}, detect_threshold=5.0,
        peak_detection_seed=0,
        spe1=Spe1Source(
            recordings=str(mock.root / "Recordings"), chan_map=str(mock.root / "chanMap.mat"),
            summary=str(mock.root / "Data Summary.xlsx"), reference_channels=[200],
        ),
    )  # fmt: skip
    meta = convert_cell(
        settings, tmp_path / "m1" / "meta.json", tmp_path / "m1" / "t.npz", TEST_JOBS
    )
    unconnected = sorted([*spe1.PHASE3A_REFERENCE_CHANNELS, 200])
    assert meta["unconnected_channel_ids"] == unconnected
    assert 200 not in meta["detector_bad_channel_ids"]
    assert meta["bad_channel_ids"] == sorted(set(meta["detector_bad_channel_ids"]) | {*unconnected})
    assert json.loads((tmp_path / "m1" / "meta.json").read_text()) == meta


def test_channel_map_rows_follow_chanmap0ind(tmp_path):
    order = np.array([2, 0, 3, 1])
    save_mat(
        tmp_path / "map.mat",
        {
            "xcoords": np.array([20.0, 0.0, 30.0, 10.0]),
            "ycoords": np.array([2.0, 0.0, 3.0, 1.0]),
            "chanMap0ind": order.astype(float),
            "connected": np.array([1.0, 1.0, 0.0, 1.0]),
        },
    )
    cm = spe1.read_channel_map(tmp_path / "map.mat")
    np.testing.assert_array_equal(cm.locations, [[0, 0], [10, 1], [20, 2], [30, 3]])
    assert cm.connected.tolist() == [True, True, True, False]
    save_mat(tmp_path / "nomap.mat", {"xcoords": np.arange(3.0), "ycoords": np.arange(3.0)})
    assert spe1.read_channel_map(tmp_path / "nomap.mat").connected.all()


def test_real_data_summary(caplog):
    summary = spe1.read_summary(require(SUMMARY_XLSX))
    assert len(summary) >= 40 and "c14" in summary
    rates = [spe1.patch_rate(row) for row in summary.values()]
    assert all(50_023.5 < r < 50_024.5 for r in rates)
    assert spe1.patch_rate(summary["c14"]) == pytest.approx(50_023.898687, abs=1e-6)
    assert spe1.summary_channel(summary["c14"]) == 159
    with caplog.at_level(logging.WARNING, logger="spikeforge.paired"):
        assert spe1.summary_row(summary, "c999") is None
        assert spe1.patch_rate(None) == spe1.DEFAULT_PATCH_RATE_HZ
    assert "c999 is not in the data summary" in caplog.text
    assert "using 50023.0 Hz" in caplog.text


def test_real_openephys_recording_through_the_chain(tmp_path, caplog):
    from datasets import load_from_disk

    recording = recordings.open_recording("openephys", require(OPENEPHYS))
    assert recording.get_num_segments() == 2 and recording.get_num_samples(0) == 1000
    with caplog.at_level(logging.WARNING, logger="spikeforge.paired"):
        saved, bad, info = streaming.preprocess(
            recording, 0, None, tmp_path / "pre", {"num_random_chunks": 5}
        )
    assert "2 segments: using segment 0" in caplog.text
    assert saved.get_num_samples() == 1000 and info["segments_left_out"] == [1]
    # SpikeInterface's own detector on the same bandpassed segment and chunks.
    import spikeinterface.preprocessing as spre

    bandpassed = spre.bandpass_filter(
        recording.select_segments([0]), freq_min=300.0, freq_max=3000.0
    )
    with caplog.at_level(logging.ERROR):
        ids, labels = spre.detect_bad_channels(bandpassed, num_random_chunks=5, seed=0)
    assert bad == sorted(recording.channel_ids.tolist().index(c) for c in ids)
    assert info["channel_labels"] == [str(x) for x in labels]
    spikes, channel = truth.detect_peak_spikes(saved)

    # 33 ms cannot hold two 3 s segments: a clear error and nothing written ...
    with pytest.raises(InputError, match=r"at most 0\.01667 s"):
        convert(saved, 0, None, spikes, tmp_path / "x", preprocessed=True)
    assert not (tmp_path / "x").exists()
    # ... while 5 ms segments go through: 7 segments (the last 100 samples), 5 train, 2 test.
    convert(saved, 0, None, spikes, tmp_path / "x", segment_s=0.005, preprocessed=True)
    dd = load_from_disk(str(tmp_path / "x"))
    assert (len(dd["train"]), len(dd["test"])) == (5, 2)
    assert len(dd["test"][1]["cp"][0]) == 100


def test_real_openephys_shorter_than_the_filter_margin(tmp_path, caplog):
    recording = recordings.open_recording("openephys", require(OPENEPHYS))
    short = recording.select_segments([0]).frame_slice(0, 300)  # 10 ms < 2 x 16.7 ms margin
    with caplog.at_level(logging.WARNING, logger="spikeforge.paired"):
        saved, _, _ = streaming.preprocess(short, 0, None, tmp_path / "pre", {"method": None})
    assert "shorter than twice the filter margin" in caplog.text
    assert saved.get_num_samples() == 300
    tiny = recording.select_segments([0]).frame_slice(0, 20)
    with pytest.raises(InputError, match="zero-phase filter needs at least"):
        streaming.preprocess(tiny, 0, None, tmp_path / "tiny")
    assert not (tmp_path / "tiny").exists()


# --- bad input ----------------------------------------------------------------------------------


def test_bin_size_not_a_multiple_of_384_int16(tmp_path, mock):
    path = tmp_path / "c1_npx_raw.bin"
    path.write_bytes(b"\0" * (384 * 2 * 10 + 3))
    with pytest.raises(InputError, match="c1_npx_raw.bin.*not a positive multiple of 384"):
        spe1.open_spe1_recording(path, mock.cell.channel_map)


def test_missing_patch_file_names_folder_and_file(tmp_path):
    folder = tmp_path / "c3"
    folder.mkdir()
    (folder / "c3_npx_raw.bin").write_bytes(b"\0" * 768)
    with pytest.raises(InputError) as error:
        spe1.find_cell_files(folder)
    assert str(folder) in str(error.value) and "patch_ch1.bin" in str(error.value)
    (folder / "c3_npx_raw.bin").unlink()
    (folder / "c3_patch_ch1.bin").write_bytes(b"\0" * 8)
    with pytest.raises(InputError, match="npx_raw.bin"):
        spe1.find_cell_files(folder)


def test_channel_map_without_coordinates(tmp_path):
    path = tmp_path / "chanMap.mat"
    save_mat(path, {"chanMap": np.arange(1, 385.0), "connected": np.ones(384)})
    with pytest.raises(InputError) as error:
        spe1.read_channel_map(path)
    assert str(path) in str(error.value) and "xcoords" in str(error.value)


def test_cell_absent_from_summary_warns_and_continues(mock, caplog):
    summary = spe1.read_summary(mock.root / "Data Summary.xlsx")
    with caplog.at_level(logging.WARNING, logger="spikeforge.paired"):
        row = spe1.summary_row(summary, "c404")
    assert row is None and "c404 is not in the data summary" in caplog.text
    assert spe1.summary_channel(row) is None


def test_binary_recording_with_probe_file_and_spike_times_file(mock, tmp_path):
    import probeinterface

    channel_map = mock.cell.channel_map
    probeinterface.write_probeinterface(
        tmp_path / "probe.json", spe1.probe_from_channel_map(channel_map)
    )
    recording = recordings.open_recording(
        "binary",
        mock.cell.npx_path,
        probe_path=tmp_path / "probe.json",
        sampling_frequency=FS,
        num_channels=384,
        dtype="int16",
        gain_to_uV=spe1.NPX_GAIN_UV,
        offset_to_uV=0.0,
    )
    np.testing.assert_array_equal(recording.get_channel_locations(), channel_map.locations)
    assert recording.get_num_samples() == mock.cell.n_npx
    np.save(tmp_path / "gt.npy", np.array([30, 10, 20]))
    np.savetxt(tmp_path / "gt.csv", [0.5, 0.001], delimiter=",")
    assert recordings.load_spike_samples(tmp_path / "gt.npy").tolist() == [10, 20, 30]
    assert recordings.load_spike_samples(tmp_path / "gt.csv", FS, "seconds").tolist() == [
        30,
        15_000,
    ]
    with pytest.raises(InputError, match="probe file not found"):
        recordings.open_recording("binary", mock.cell.npx_path, probe_path=tmp_path / "none.json")


def test_open_recording_errors_name_the_path(tmp_path):
    with pytest.raises(InputError, match="recording not found"):
        recordings.open_recording("openephys", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="openephys reader failed"):
        recordings.open_recording("openephys", tmp_path / "empty")


def test_summary_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        spe1.read_summary(tmp_path / "none.xlsx")
    shutil.copy(Path(__file__), tmp_path / "bad.xlsx")
    with pytest.raises(InputError, match="not a readable Excel file"):
        spe1.read_summary(tmp_path / "bad.xlsx")


def test_spike_trains_of_a_converted_cell_are_its_ground_truth(chain, tmp_path):
    """The spike-train export's source: the ground-truth frames the mock cell was given, read
    back from the Arrow segments, with the template and peak channel the chain computed."""
    from spikeforge.spiketrains.sources import from_paired_cell

    trains = from_paired_cell(chain.out)
    assert trains.n_units == 1 and trains.sampling_frequency == FS
    assert trains.start_time == chain.start / FS
    covered = chain.gt.spike_rel[chain.gt.spike_rel < trains.duration * FS]
    assert trains.train(0, "samples").tolist() == sorted(covered.tolist())
    assert trains.unit_properties["peak_channel"].tolist() == [chain.template.peak_channel]
    assert np.array_equal(trains.unit_properties["waveform_mean"][0], chain.template.templates[0])
    assert np.array_equal(
        trains.recording_properties["channel_positions"], chain.channel_map.locations
    )


def test_mock_summary_is_byte_identical_when_rewritten_later(tmp_path):
    """Excel stores its save time (document properties and zip entries): fixed, so a
    rebuilt summary matches; pandas and openpyxl still read it."""
    import time

    import openpyxl
    import pandas as pd

    from spikeforge.paired.mock import write_summary

    rows = [{"Cell": "c2", "x": 2}, {"Cell": "c1", "x": 1}]
    write_summary(tmp_path / "a.xlsx", rows)
    time.sleep(2.1)  # zip entry times have a resolution of 2 s, the properties of 1 s
    write_summary(tmp_path / "b.xlsx", rows)
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    assert pd.read_excel(tmp_path / "a.xlsx")["Cell"].tolist() == ["c1", "c2"]
    assert openpyxl.load_workbook(tmp_path / "a.xlsx").properties.created.year == 2000


def test_paired_dataset_loader_names_truncated_missing_and_extra_arrow_files(tmp_path):
    import datasets

    from spikeforge.core.errors import InputError
    from spikeforge.io.hf_datasets import load_dataset_dict

    folder = tmp_path / "cell"
    table = {"sample_id": list(range(400)), "x": [[float(i)] * 50 for i in range(400)]}
    whole = datasets.DatasetDict(
        train=datasets.Dataset.from_dict(table), test=datasets.Dataset.from_dict(table)
    )
    whole.save_to_disk(str(folder), num_shards={"train": 2, "test": 1})
    loaded = load_dataset_dict(folder)
    assert loaded["train"]["sample_id"] == list(range(400))  # what load_from_disk gives

    first, second = sorted((folder / "train").glob("*.arrow"))
    extra = folder / "train" / "data-00009-of-00009.arrow"
    extra.write_bytes(first.read_bytes())
    with pytest.raises(InputError, match="data-00009-of-00009.arrow: an Arrow file that state"):
        load_dataset_dict(folder)
    extra.unlink()
    data = second.read_bytes()
    second.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=f"{second.name}: not a complete Arrow stream"):
        load_dataset_dict(folder)
    second.unlink()
    with pytest.raises(InputError, match=f"{second.name}: listed in state.json, not on disk"):
        load_dataset_dict(folder)
