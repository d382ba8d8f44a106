"""The one seeding scheme: every random draw comes from the config seed and the keys that name
what is drawn, never from run order.

    seed_sequence(seed, *keys) = numpy SeedSequence([seed, code(key) ...])

where a string key counts as its CRC-32 and an integer key as itself. Keys go from the most
general to the most particular and end with what the draw is for when one item has several
(the STREAM_* codes below); the README lists every draw's keys. Because a draw depends only
on its keys, any output can be rebuilt alone, byte for byte, and a sample does not depend on
the shard it is written in.
"""

from __future__ import annotations

import zlib

import numpy as np

# What a draw is for, when one item (a sample, a mock recording) has several independent ones.
STREAM_PLAN = 0
STREAM_NOISE = 1
STREAM_DATASET = 2
STREAM_MOCK = 3

Key = str | int


def key_code(key: Key) -> int:
    """A key's entry in the seed sequence: CRC-32 of a string, an integer as itself."""
    if isinstance(key, str):
        return zlib.crc32(key.encode("utf-8"))
    if isinstance(key, bool) or not isinstance(key, int | np.integer) or key < 0:
        raise ValueError(f"seed keys are strings or non-negative integers, got {key!r}")
    return int(key)


def seed_sequence(seed: int, *keys: Key) -> np.random.SeedSequence:
    return np.random.SeedSequence([key_code(seed), *(key_code(k) for k in keys)])


def rng(seed: int, *keys: Key) -> np.random.Generator:
    """numpy's default generator (PCG64) for the draw named by `keys`."""
    return np.random.default_rng(seed_sequence(seed, *keys))


def fast_rng(seed: int, *keys: Key) -> np.random.Generator:
    """SFC64, the fastest of numpy's generators here, for bulk draws (sensor noise)."""
    return np.random.Generator(np.random.SFC64(seed_sequence(seed, *keys)))


def int_seed(seed: int, *keys: Key) -> int:
    """A 32-bit integer seed for libraries that take one (TVB, SpikeInterface)."""
    return int(seed_sequence(seed, *keys).generate_state(1, dtype=np.uint32)[0])
