"""Seeds derived from (config seed, split, sample index, stream), never from run order.

Any sample can be regenerated alone, and a shard's content does not depend on the shard size.
"""

from __future__ import annotations

import zlib

import numpy as np

# Independent random streams drawn for the same sample.
STREAM_PLAN = 0
STREAM_NOISE = 1
STREAM_DATASET = 2
STREAM_MOCK = 3


def split_code(split: str) -> int:
    return zlib.crc32(split.encode("utf-8"))


def rng_for(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, split_code(split), index, stream]))
