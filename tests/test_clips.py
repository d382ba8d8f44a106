"""Raw neural-mass output -> clips (docs/eeg-chain.md §2-4) against literal, in-memory,
1-based implementations written here from the specification."""

from __future__ import annotations

import numpy as np
import pytest

from spikeforge.core.errors import InputError
from spikeforge.eeg.clips import (
    Detection,
    PeakFinder,
    clip_start,
    keep_separated,
    process_region,
    rescale_trace,
    select_region_peaks,
    spike_alpha,
)
from spikeforge.eeg.raw import Preprocessing, decimated_chunks, preprocess, raw_chunk_paths
from spikeforge.io.mat import save_mat

DET = Detection()


# ----------------------------------------------------------------- literal reference (1-based)


def ref_find_spikes(nmm):
    """Zero below 8, strict local maxima per channel, sort by time, edge and 100-sample rules."""
    n = nmm.shape[0]
    z = np.where(nmm < 8, 0.0, nmm)
    found = []
    for ch in range(nmm.shape[1]):
        for t in range(2, n):  # 1-based t, neighbours t-1 and t+1 exist
            if z[t - 1, ch] > z[t - 2, ch] and z[t - 1, ch] > z[t, ch]:
                found.append((t, ch))
    found.sort()
    kept = []
    for i, (t, ch) in enumerate(found):
        separated = i == 0 or t - found[i - 1][0] > 100
        if t - 249 > 0 and t + 250 < n and separated:
            kept.append((t, ch))
    return kept


def ref_select(kept, region):
    times_other = [t for t, ch in kept if ch != region]
    out = []
    for t, ch in kept:
        if ch != region:
            continue
        s = (t // 500) * 500 + 1
        if not any(s - 200 <= u <= s + 699 for u in times_other):
            out.append(t)
    return out  # 1-based


# ------------------------------------------------------------------------- constructed data


def spike(n, t0, amplitude=20.0):
    t = np.arange(n)
    return amplitude * np.exp(-0.5 * ((t - t0) / 4.0) ** 2) - 0.3 * amplitude * np.exp(
        -0.5 * ((t - t0 - 60) / 20.0) ** 2
    )


def constructed(n=6000, regions=5, seed=0):
    gen = np.random.default_rng(seed)
    x = 2.0 + 0.5 * gen.standard_normal((n, regions)).cumsum(axis=0) / np.sqrt(n)
    events = {
        # region 1: normal spikes, one near each edge, one too close to another
        1: [100, 1250, 2260, 3700, 5900],
        # region 3: a spike inside region 1's clear window of the spike at 2260 (clip 2000..2499)
        3: [2450, 4600],
        # region 2: 60 samples after region 1's spike at 3700 (the 100-sample rule)
        2: [3760],
    }
    for ch, times in events.items():
        for t in times:
            x[:, ch] += spike(n, t)
    return x


def test_detection_and_selection_match_reference():
    x = constructed()
    finder = PeakFinder(DET.threshold_mv)
    for part in np.array_split(x, 7):  # chunk borders must not matter
        finder.feed(part)
    times, chans = finder.peaks()
    times, chans = keep_separated(times, chans, finder.n_rows, DET)
    kept = ref_find_spikes(x)
    assert [(t + 1, c) for t, c in zip(times, chans, strict=True)] == kept
    for region in range(x.shape[1]):
        ours = select_region_peaks(times, chans, region, DET) + 1
        assert ours.tolist() == ref_select(kept, region)
    region1 = (select_region_peaks(times, chans, 1, DET) + 1).tolist()
    # 100 (edge), 2260 (region 3 at 2450 in its window) are gone; 3700 stays although region
    # 2 spikes 60 samples later (that peak is dropped by the 100-sample rule instead).
    assert 101 not in region1 and 2261 not in region1 and 3701 in region1
    assert 5901 not in region1  # too close to the end


def write_raw(folder, region, iteration, data, chunk):
    for k, start in enumerate(range(0, data.shape[0], chunk)):
        part = data[start : start + chunk].astype(np.float32)
        save_mat(
            folder / f"a{region}" / f"mean_iter_{iteration}_a_iter_{region}_{k}.mat",
            {"data": part, "time": np.arange(start, start + len(part))[None] * 0.5},
        )


@pytest.mark.parametrize("decimation", ["take", "antialias"])
def test_streamed_preprocessing_equals_in_memory(tmp_path, decimation):
    raw = np.random.default_rng(1).standard_normal((9001, 6)).astype(np.float32)
    write_raw(tmp_path, 0, 0, raw, 1234)
    prep = Preprocessing(decimation=decimation)
    streamed = np.concatenate(list(decimated_chunks(raw_chunk_paths(tmp_path, 0, 0), prep)))
    whole = preprocess(raw, prep)
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-6)
    if decimation == "take":
        np.testing.assert_array_equal(whole, raw[1000::4])
    else:  # 10 Hz passes; 400 Hz, above the new Nyquist (250 Hz), does not alias
        t = np.arange(20000) / 2000
        test = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 400 * t)], axis=1)
        out = preprocess(test, prep)[100:-100]
        assert np.std(out[:, 0]) > 0.68 and np.std(out[:, 1]) < 0.01
        aliased = preprocess(test, Preprocessing())[100:-100]
        assert np.std(aliased[:, 1]) > 0.5


def test_fsaverage_remap():
    raw = np.tile(np.arange(998, dtype=np.float32), (1200, 1))
    out = preprocess(raw, Preprocessing(fsaverage_remap=True))
    assert out.shape == (50, 994)
    # 1-based 995, 998, 997, 996 copied into 8, 326, 922, 950
    assert out[0, 7] == 994 and out[0, 325] == 997 and out[0, 921] == 996 and out[0, 949] == 995
    assert out[0, 0] == 0 and out[0, 993] == 993


def test_missing_chunk_is_named(tmp_path):
    write_raw(tmp_path, 3, 1, np.zeros((300, 4)), 100)
    (tmp_path / "a3" / "mean_iter_1_a_iter_3_1.mat").unlink()
    with pytest.raises(InputError, match=r"mean_iter_1_a_iter_3_1\.mat: raw chunk missing"):
        raw_chunk_paths(tmp_path, 3, 1)


def ref_rescale(trace, peaks1, alpha):
    """The rescaling rule of docs/eeg-chain.md §4 with 1-based positions, written plainly."""
    mean = trace.mean()
    x = trace - mean
    for t in peaks1:
        sig = x[t - 250 : t + 250].copy()  # 1-based t-249 .. t+250
        thr = 0.1

        def candidates(thr, sig=sig):
            return [p for p in range(1, 501) if abs(sig[p - 1]) < thr and 50 <= p <= 450]

        small = candidates(thr)
        while not [p for p in small if p < 250]:
            thr += 0.05
            small = candidates(thr)
        start = [p for p in small if p < 250][-1]
        trough = int(np.argmin(sig[300:400])) + 1 + 301
        while not [p for p in small if p > trough]:
            thr += 0.05
            small = candidates(thr)
        end = [p for p in small if p > trough][0]
        for p in range(start, end + 1):
            sig[p - 1] *= alpha
        x[t - 250 : t + 250] = sig
    return x + mean


def test_rescale_matches_reference():
    x = constructed()
    trace = x[:, 1]
    peaks = np.array([1250, 3700])
    np.testing.assert_allclose(
        rescale_trace(trace, peaks, 2.5), ref_rescale(trace, peaks + 1, 2.5), rtol=1e-12
    )
    # Outside the spikes the trace is untouched.
    np.testing.assert_allclose(rescale_trace(trace, peaks, 2.5)[:800], trace[:800], rtol=1e-12)


def test_rescaling_gives_15_db(eeg_case):
    """After rescaling, the single-region sensor SNR over the spike windows is 15 dB (on the
    demo head model and on DeepSIF's leadfield)."""
    fwd = eeg_case.anatomy.leadfield
    gen = np.random.default_rng(2)
    n, region = 6000, fwd.shape[1] * 3 // 10
    x = 3.0 + 0.8 * gen.standard_normal((n, fwd.shape[1]))
    peaks = np.array([1250, 2740, 4300])
    for t in peaks:
        x[:, region] += spike(n, t, amplitude=25.0)
    offsets = np.arange(-99, 101)
    rows = np.clip((peaks[:, None] + offsets).ravel(), 0, n - 1)
    means = x.mean(axis=0)
    alpha = spike_alpha(x[rows], means, x[rows, region], fwd, region, 15.0)
    scaled = x.copy()
    scaled[:, region] = rescale_trace(x[:, region], peaks, alpha)
    centred = scaled - scaled.mean(axis=0)
    signal = np.outer(centred[rows, region], fwd[:, region])
    others = np.delete(np.arange(fwd.shape[1]), region)
    noise = centred[rows][:, others] @ fwd[:, others].T
    snr = 10 * np.log10(np.sum(signal**2) / np.sum(noise**2))
    assert abs(snr - 15.0) < 0.1


def test_process_region_writes_numbered_clips(tmp_path):
    fwd = np.random.default_rng(3).standard_normal((8, 5))
    for iteration, seed in ((0, 4), (1, 5)):
        raw = np.repeat(constructed(seed=seed), 4, axis=0)  # 2 kHz
        raw = np.concatenate([np.full((1000, 5), 2.0), raw])  # burn-in
        write_raw(tmp_path, 1, iteration, raw, 5000)
    result = process_region(tmp_path, 1, [0, 1], fwd, Preprocessing(), DET)
    assert result.iteration == [0, 0, 1, 1]  # 1250 and 3700 kept in each iteration
    assert result.peak_time == [1250, 3700, 1250, 3700]
    assert result.clip_start == [1000, 3500, 1000, 3500]
    for clip, start in zip(result.clips, result.clip_start, strict=True):
        assert clip.shape == (500, 5) and clip.dtype == np.float32
        assert int(np.argmax(clip[:, 1])) + start in (1250, 3700)
    with pytest.raises(InputError, match="raw data has 5 regions, the leadfield 6"):
        process_region(tmp_path, 1, [0], np.ones((8, 6)), Preprocessing(), DET)


def test_streamed_clips_equal_an_in_memory_extraction(tmp_path):
    """process_region (two passes, clips staged on disk, handed to on_clip one by one) against
    the same steps on the whole decimated recording held in memory."""
    fwd = np.random.default_rng(7).standard_normal((8, 5))
    raw = np.repeat(constructed(seed=2), 4, axis=0)  # 2 kHz
    raw = np.concatenate([np.full((1000, 5), 2.0), raw])
    write_raw(tmp_path, 1, 0, raw, 777)  # chunks far shorter than a clip
    prep = Preprocessing()
    received = []
    result = process_region(tmp_path, 1, [0], fwd, prep, DET, on_clip=received.append)
    assert result.clips == [] and len(received) == 2

    x = preprocess(raw.astype(np.float32), prep).astype(np.float64)
    finder = PeakFinder(DET.threshold_mv)
    finder.feed(x)
    times, chans = keep_separated(*finder.peaks(), x.shape[0], DET)
    peaks = select_region_peaks(times, chans, 1, DET)
    offsets = np.arange(DET.alpha_window[0], DET.alpha_window[1] + 1)
    rows = np.clip((peaks[:, None] + offsets).ravel(), 0, x.shape[0] - 1)
    alpha = spike_alpha(x[rows], x.mean(axis=0), x[rows, 1], fwd, 1, DET.target_snr_db)
    scaled = rescale_trace(x[:, 1], peaks, alpha)
    assert result.alpha == pytest.approx([alpha] * 2, rel=1e-12)
    for clip, start in zip(received, result.clip_start, strict=True):
        expected = x[start : start + 500].copy()
        expected[:, 1] = scaled[start : start + 500]
        assert clip.dtype == np.float32
        np.testing.assert_allclose(clip, expected.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_region_without_sensor_power_is_a_clear_error(tmp_path):
    """A zero leadfield column for the spiking region: its spikes cannot be scaled to 15 dB,
    and the error names the recordings and the cause (not a bare ValueError)."""
    fwd = np.random.default_rng(3).standard_normal((8, 5))
    fwd[:, 1] = 0.0
    raw = np.concatenate([np.full((1000, 5), 2.0), np.repeat(constructed(seed=4), 4, axis=0)])
    write_raw(tmp_path, 1, 0, raw, 5000)
    with pytest.raises(InputError, match="region 1 has no sensor signal power") as error:
        process_region(tmp_path, 1, [0], fwd, Preprocessing(), DET)
    assert str(tmp_path / "a1") in str(error.value)


# ------------------------------------------------------------------------------- boundaries


def ref_strict_maxima(data, threshold):
    """Every (t, channel), 0-based, where the data with values below threshold set to 0 is
    larger than both neighbours; sorted by time, then channel."""
    z = np.where(data < threshold, 0.0, data)
    return sorted(
        (t, c)
        for c in range(z.shape[1])
        for t in range(1, z.shape[0] - 1)
        if z[t, c] > z[t - 1, c] and z[t, c] > z[t + 1, c]
    )


@pytest.mark.parametrize("seed", range(4))
def test_peak_finder_on_ties_and_values_at_the_threshold(seed):
    """Integer data in 0..10 hold plateaus, values exactly at the threshold (8) and peaks at
    chunk borders; fed in chunks of 1 to 5 rows."""
    gen = np.random.default_rng(seed)
    data = gen.integers(0, 11, (600, 3)).astype(np.float64)
    finder = PeakFinder(8.0)
    start = 0
    while start < len(data):
        stop = start + int(gen.integers(1, 6))
        finder.feed(data[start:stop])
        start = stop
    times, chans = finder.peaks()
    assert times.dtype == chans.dtype == np.int64
    assert list(zip(times.tolist(), chans.tolist(), strict=True)) == ref_strict_maxima(data, 8.0)
    assert finder.n_rows == 600
    np.testing.assert_array_equal(finder.sums, data.sum(axis=0))
    empty = PeakFinder(8.0).peaks()
    assert [(a.shape, a.dtype) for a in empty] == [((0,), np.int64)] * 2


def test_separation_edges_and_clip_starts_at_their_bounds():
    """§3 in 1-based terms: keep t when t - 249 > 0, t + 250 < n and t is more than 100 after
    the previous peak; the clip of t starts at floor(t / 500) * 500 + 1."""
    n = 2000
    times0 = np.array([249, 349, 450, 1000, 1100, 1201, 1748])
    chans = np.arange(times0.size) % 3
    kept, kept_chans = keep_separated(times0, chans, n, DET)
    expected = []
    previous = None
    for t0, c in zip(times0, chans, strict=True):
        t = t0 + 1
        separated = previous is None or t - previous > 100
        if t - 249 > 0 and t + 250 < n and separated:
            expected.append((t0, c))
        previous = t
    assert list(zip(kept.tolist(), kept_chans.tolist(), strict=True)) == expected
    assert kept.tolist() == [249, 450, 1000, 1201, 1748]  # 349 and 1100: exactly 100 after
    for alone, keep in [(248, False), (249, True), (1748, True), (1749, False)]:
        one = keep_separated(np.array([alone]), np.array([0]), n, DET)[0]
        assert one.tolist() == ([alone] if keep else []), alone
    edge = np.array([0, 498, 499, 500, 998, 999, 1000])
    np.testing.assert_array_equal(clip_start(edge), (edge + 1) // 500 * 500 + 1 - 1)
    assert clip_start(edge).tolist() == [0, 0, 500, 500, 500, 1000, 1000]


@pytest.mark.parametrize("other, clear", [(1300, False), (1299, True), (2199, False), (2200, True)])
def test_clear_window_bounds(other, clear):
    """A region-0 peak at 0-based 1600 has its clip at 1500..1999 (1-based 1501): another
    region's peak at 1-based 1301..2200 (0-based 1300..2199) removes it."""
    times = np.sort(np.array([1600, other]))
    chans = np.array([0, 1]) if times[0] == 1600 else np.array([1, 0])
    kept = select_region_peaks(times, chans, 0, DET)
    assert (kept.tolist() == [1600]) == clear


def bracket_trace(values: dict[int, float]) -> np.ndarray:
    """A 1000-sample trace with a spike at 0-based 500, whose 500-sample window (1-based
    positions 1..500, the peak at 250) is +-1 alternating, 3 at the peak, -2 at the trough
    (351), and `values` at the given 1-based positions. Sample 0, outside the window, makes
    the sum exactly 0, so the mean-removed zeros stay exactly 0."""
    x = np.where(np.arange(1000) % 2 == 0, 1.0, -1.0)
    window = x[251:751]
    window[249], window[350] = 3.0, -2.0
    for position, value in values.items():
        window[position - 1] = value
    x[0] = 0.0
    x[0] = -x.sum()
    assert x.mean() == 0.0
    return x


@pytest.mark.parametrize(
    "values, scaled",
    [
        ({50: 0.0, 450: 0.0}, (50, 450)),  # bracket at the first and last allowed positions
        ({49: 0.0, 451: 0.0}, (249, 353)),  # just outside: the threshold grows past 1
        ({100: 0.0, 250: 0.0, 450: 0.0}, (100, 450)),  # the bracket is before the peak
        ({100: 0.0, 352: 0.0, 450: 0.0}, (100, 450)),  # ... and after trough + 1
        ({**dict.fromkeys(range(240, 250), 1.125)}, (239, 353)),  # growth by 0.05
        ({100: 0.0, **dict.fromkeys(range(353, 358), -1.125)}, (100, 358)),
    ],
)
def test_rescale_bracket_bounds(values, scaled):
    """§4's bracket of a spike: the last near-zero sample before the peak (1-based 250) and
    the first after trough + 1, within 50..450; the threshold starts at 0.1 and grows by 0.05.
    Against the literal reference, and the scaled span (1-based, inclusive) stated here."""
    trace = bracket_trace(values)
    out = rescale_trace(trace, np.array([500]), 2.0)
    np.testing.assert_allclose(out, ref_rescale(trace, [501], 2.0), rtol=0, atol=1e-12)
    changed = np.flatnonzero(out != trace) - 250  # 1-based window positions
    inside = [p for p in range(scaled[0], scaled[1] + 1) if trace[250 + p] != 0.0]
    assert changed.tolist() == inside


def test_process_region_iterations_without_peaks_single_peaks_and_clips_past_the_end(tmp_path):
    """Iteration 0 has no spike (reported, and the next iterations still run); 1 is one raw
    chunk whose last clip ends exactly at the recording's end; 2 is 200 samples shorter, so
    that clip is skipped and reported; 3 has a single spike."""
    gen = np.random.default_rng(8)
    fwd = gen.standard_normal((8, 5))

    def recording(n, spikes):
        x = 2.0 + 0.1 * gen.standard_normal((n, 5))
        for t in spikes:
            x[:, 1] += spike(n, t)
        return np.concatenate([np.full((1000, 5), 2.0), np.repeat(x, 4, axis=0)])

    for iteration, (n, spikes, chunk) in enumerate(
        [(6000, [], 5000), (6000, [1250, 5540], 25000), (5800, [1250, 5540], 5000),
         (6000, [1250], 5000)]
    ):  # fmt: skip
        write_raw(tmp_path, 1, iteration, recording(n, spikes), chunk)
    result = process_region(tmp_path, 1, [0, 1, 2, 3], fwd, Preprocessing(), DET)
    assert result.iteration == [1, 1, 2, 3]
    assert result.peak_time == [1250, 5540, 1250, 1250]
    assert result.clip_start == [1000, 5500, 1000, 1000]
    assert result.messages == [
        "region 1 iteration 0: no peak passes the selection",
        "region 1 iteration 2: 1 peak(s) whose clip would run past the end of the recording "
        "were skipped",
    ]
    assert [c.shape for c in result.clips] == [(500, 5)] * 4


@pytest.mark.parametrize("remap", [False, True])
def test_raw_width_error_names_the_chunk_and_the_expected_width(tmp_path, remap):
    write_raw(tmp_path, 1, 0, np.full((3000, 5), 2.0), 3000)
    with pytest.raises(InputError) as error:
        process_region(tmp_path, 1, [0], np.ones((8, 6)), Preprocessing(fsaverage_remap=remap), DET)
    chunk = tmp_path / "a1" / "mean_iter_0_a_iter_1_0.mat"
    expected = f"{chunk} [data]: raw data has 5 regions, the leadfield 6"
    assert str(error.value) == expected + (" (fsaverage remap expects 998)" if remap else "")


def test_scale_factor_from_the_powers():
    """alpha = sqrt(10^(SNR/10) Pn / Ps), also for Ps below 1; Ps = 0 is a clear error."""
    from spikeforge.eeg.clips import _alpha

    assert _alpha(0.5, 2.0, 3, 15.0) == pytest.approx(np.sqrt(10**1.5 * 4.0), rel=1e-12)
    with pytest.raises(InputError) as error:
        _alpha(0.0, 2.0, 3, 15.0)
    assert str(error.value) == (
        "leadfield: region 3 has no sensor signal power around its peaks (its leadfield column "
        "is zero or its trace is flat there): its spikes cannot be scaled"
    )


def test_a_missing_last_raw_chunk_is_named_when_the_config_implies_the_count(tmp_path):
    from spikeforge.core.errors import InputError
    from spikeforge.eeg.raw import chunk_name, raw_chunk_paths, write_mock_raw

    write_mock_raw(tmp_path / "a3", 3, [0], 5, 3.0, 1.0, 7)
    assert len(raw_chunk_paths(tmp_path, 3, 0, expected=3)) == 3
    last = tmp_path / "a3" / chunk_name(3, 0, 2)
    last.unlink()
    # without a count from the config, the two chunks left look like a whole recording
    assert len(raw_chunk_paths(tmp_path, 3, 0)) == 2
    problem = r"mean_iter_0_a_iter_3_2\.mat: raw chunk 2 missing: .* make 3 chunks, 2 found"
    with pytest.raises(InputError, match=problem):
        raw_chunk_paths(tmp_path, 3, 0, expected=3)
