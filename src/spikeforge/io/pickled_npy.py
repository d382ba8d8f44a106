""".npy files that hold a dict of arrays, the layout of human single-unit pipelines
(`np.save(path, {"spike_times": ..., "spike_amps": ...})`).

Such a file is a pickle inside an .npy header, so loading one can run code. Two halves:

- `save_dict` writes the same bytes as `np.save(path, dict)`, but arrays may be given as
  `StreamedArray`s whose data is produced chunk by chunk and written straight to the file: a
  90-minute LFP never exists whole in memory.
- `load_dict` reads such a file with an unpickler that only rebuilds numpy arrays, dtypes,
  numpy scalars and plain containers; anything else (a function call, a class of any other
  module) is refused. Callers load only from a folder the user named; see sessions.read.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path, pristine_pickle

# np.save's protocol for object arrays (numpy >= 1.17 writes 4; older files 2 or 3 load too).
PROTOCOL = 4


@dataclass(eq=False)
class StreamedArray:
    """An array known by shape and dtype whose C-order bytes `chunks()` yields piece by piece
    (every call starts again from the first piece)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: Callable[[], Iterable[np.ndarray]]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def materialise(self) -> np.ndarray:
        data = np.concatenate([np.ravel(c) for c in self.chunks()]) if self.nbytes else None
        out = np.empty(self.shape, self.dtype)
        if data is not None:
            out.reshape(-1)[:] = data
        return out


@dataclass(eq=False)
class _StreamedBytes:
    array: StreamedArray


_pickle = pristine_pickle()


class _StreamingPickler(_pickle._Pickler):  # type: ignore[misc]
    """The pure-Python pickler (same opcodes and frames as the C one) taught to write a
    StreamedArray as numpy's own reduction of an array, its payload streamed."""

    dispatch = dict(_pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_streamed_array(self, obj: StreamedArray) -> None:
        template = np.empty(0, obj.dtype)
        func, args, state = template.__reduce__()
        version, _, dtype, fortran, _ = state
        self.save_reduce(
            func, args, (version, tuple(obj.shape), dtype, fortran, _StreamedBytes(obj)), obj=obj
        )

    def save_streamed_bytes(self, obj: _StreamedBytes) -> None:
        n = obj.array.nbytes
        if n < self.framer._FRAME_SIZE_TARGET:
            # Small payloads go inside the current frame, as bytes do.
            self.save_bytes(obj.array.materialise().tobytes())
            return
        header = (
            pickle.BINBYTES8 + struct.pack("<Q", n)
            if n > 0xFFFFFFFF
            else pickle.BINBYTES + struct.pack("<I", n)
        )
        self.framer.commit_frame(force=True)
        write = self.framer.file_write
        write(header)
        written = 0
        for chunk in obj.array.chunks():
            data = np.ascontiguousarray(chunk, dtype=obj.array.dtype)
            write(memoryview(data).cast("B"))
            written += data.nbytes
        if written != n:
            raise ValueError(f"a streamed array gave {written} bytes, its shape needs {n}")
        self.memoize(obj)

    dispatch[StreamedArray] = save_streamed_array
    dispatch[_StreamedBytes] = save_streamed_bytes


def save_dict(path: str | Path, content: Mapping[str, Any]) -> None:
    """`np.save(path, dict(content))`, byte for byte, with StreamedArray values streamed; the
    file appears only when complete."""
    holder = np.empty((), dtype=object)
    holder[()] = dict(content)
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, np.lib.format.header_data_from_array_1_0(holder)
        )
        _StreamingPickler(handle, protocol=PROTOCOL).dump(holder)


# ---------------------------------------------------------------------------------- loading
# What a dict of arrays needs to be rebuilt: numpy's array and scalar reconstructors (module
# paths of numpy 1 and 2), dtypes, and the builtins old protocols use for bytes.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("codecs", "encode"),
    ("builtins", "bytearray"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "numpy" and name.endswith("DType"):  # numpy 2's dtype classes
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only arrays are allowed")


def load_dict(path: str | Path) -> dict[str, Any]:
    """The dict an .npy file holds, rebuilt by the arrays-only unpickler. InputError names the
    file when it is missing, not an .npy of a dict, truncated or holds anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(handle)
            if dtype != np.dtype(object) or shape != ():
                raise InputError(path, f"holds a {dtype} array of shape {shape}, not a dict")
            value = _ArraysOnly(handle).load()
    except InputError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, struct.error, TypeError) as error:
        problem = "truncated" if isinstance(error, EOFError) else str(error)
        raise InputError(path, f"cannot be read as an .npy dict: {problem}") from None
    content = value.item() if isinstance(value, np.ndarray) else value
    if not isinstance(content, dict):
        raise InputError(path, f"holds a {type(content).__name__}, not a dict")
    return content


def chunked(values: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Pieces of `values` along its first axis."""
    for first in range(0, len(values), size):
        yield values[first : first + size]


def header_bytes(holder: np.ndarray) -> bytes:
    """The .npy header np.save writes for `holder` (used by tests)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(holder))
    return buffer.getvalue()
