"""Whisper's audio encoder read from a CTranslate2 model file (``model.bin``), as the weights of
Qwen2-Audio's audio tower (a Whisper encoder whose names it shares with transformers' ``WhisperEncoder``).

The file (CTranslate2's binary format, version 6; ``ctranslate2/src/models/model.cc``) is a header
and a flat list of named arrays:

    uint32 binary_version · string spec_name · uint32 spec_revision · uint32 count
    count × (string name · uint8 rank · rank × uint32 dim · uint8 dtype · uint32 bytes · bytes)
    uint32 aliases · aliases × (string alias · string name)

where a string is a uint16 length (with its closing NUL) and its bytes, all little-endian. Only the
encoder's arrays are kept (``encoder/...``); the decoder's are skipped unread. CTranslate2's
Whisper spec fuses the query, key and value projections of each attention layer into one matrix
(``self_attention/linear_0``, rows ``q | k | v``, with a zero bias for the key, which Whisper
has none of); :func:`whisper_encoder_state` splits them again.

Needs numpy only; torch is imported when the state is made of tensors.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from faderwise.tools.errors import FaderwiseError
from faderwise.tools.input_files import open_binary

SUPPORTED_VERSIONS = (5, 6)
# CTranslate2's DataType enum (include/ctranslate2/types.h), by its uint8 code
_DTYPES: dict[int, tuple[str, int]] = {0: ("float32", 4), 1: ("int8", 1), 2: ("int16", 2), 3: ("int32", 4),
                                       4: ("float16", 2), 5: ("bfloat16", 2)}


class CTranslate2FormatError(FaderwiseError, ValueError):
    """A file that is not a CTranslate2 Whisper model this reader knows (the message names it)."""


@dataclass(frozen=True)
class WhisperEncoderShape:
    """The dimensions of a Whisper encoder, read off its weights."""

    d_model: int
    layers: int
    heads: int
    ffn_dim: int
    mel_bins: int
    positions: int


def read_ctranslate2(path: str | os.PathLike[str], *, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The arrays of a CTranslate2 ``model.bin`` whose names start with ``prefix``, as float32
    (floats; int8 weights are scaled back by their ``weight_scale``) or their integer type.

    Raises:
        CTranslate2FormatError: not a CTranslate2 model of a known version, or cut short.
        NotAFileError: a named pipe (FIFO), a socket or a device.
    """
    path = Path(path)
    try:
        with open_binary(path, what="a CTranslate2 model") as stream:  # a named pipe or a device is refused
            return _read(stream, path, prefix)
    except (struct.error, UnicodeDecodeError) as exc:
        raise CTranslate2FormatError(f"{path}: not a CTranslate2 model file, or cut short ({exc})") from None
    except OSError as exc:
        raise CTranslate2FormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _read(stream: BinaryIO, path: Path, prefix: str) -> dict[str, np.ndarray]:
    def unpack(fmt: str) -> Any:
        return struct.unpack("<" + fmt, exact(struct.calcsize("<" + fmt)))[0]

    def exact(size: int) -> bytes:
        raw = stream.read(size)
        if len(raw) != size:
            raise struct.error("unexpected end of file")
        return raw

    def string() -> str:
        return exact(unpack("H")).decode("utf-8").rstrip("\0")

    version = unpack("I")
    if version not in SUPPORTED_VERSIONS:
        raise CTranslate2FormatError(f"{path}: CTranslate2 binary version {version}; this reader knows "
                                     f"{', '.join(map(str, SUPPORTED_VERSIONS))}")
    spec = string()
    if spec != "WhisperSpec":
        raise CTranslate2FormatError(f"{path}: a {spec or 'unnamed'} model, not a Whisper model")
    unpack("I")  # the spec's revision
    arrays: dict[str, np.ndarray] = {}
    skipped: dict[str, tuple[int, int, str, tuple[int, ...]]] = {}
    for _ in range(unpack("I")):
        name = string()
        shape = tuple(unpack("I") for _ in range(unpack("B")))
        code = unpack("B")
        size = unpack("I")
        if code not in _DTYPES:
            raise CTranslate2FormatError(f"{path}: {name} has unknown data type {code}")
        dtype, width = _DTYPES[code]
        if size != width * int(np.prod(shape, dtype=np.int64)):
            raise CTranslate2FormatError(f"{path}: {name} holds {size} bytes, not {shape} of {dtype}")
        if not name.startswith(prefix):  # skipped unread, but found again if an alias of ours names it
            skipped[name] = (stream.tell(), size, dtype, shape)
            stream.seek(size, os.SEEK_CUR)
            continue
        arrays[name] = _decode(exact(size), dtype, shape)
    aliases = [(string(), string()) for _ in range(unpack("I"))]
    for alias, name in aliases:  # the converter keeps one copy of equal arrays and aliases the others
        if not alias.startswith(prefix):
            continue
        if name not in arrays and name in skipped:
            offset, size, dtype, shape = skipped[name]
            stream.seek(offset)
            arrays[name] = _decode(exact(size), dtype, shape)
        if name in arrays:
            arrays[alias] = arrays[name]
    return _dequantize({name: value for name, value in arrays.items() if name.startswith(prefix)})


def _decode(raw: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bfloat16":  # the upper half of a float32
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    values = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    return values.astype(np.float32) if dtype == "float16" else values.copy()


def _dequantize(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """int8 weights times the inverse of their per-row ``weight_scale`` (CTranslate2 stores
    ``round(w * scale)``)."""
    for name in [n for n in arrays if n.endswith("/weight_scale")]:
        weight = name.removesuffix("_scale")
        if weight in arrays and arrays[weight].dtype == np.int8:
            scale = arrays.pop(name).astype(np.float32)
            arrays[weight] = arrays[weight].astype(np.float32) / scale.reshape(-1, *([1] * (arrays[weight].ndim - 1)))
    return arrays


def encoder_shape(arrays: dict[str, np.ndarray], *, source: str = "model.bin") -> WhisperEncoderShape:
    """The encoder's dimensions from its arrays (:func:`read_ctranslate2`)."""
    try:
        positions, d_model = arrays["encoder/position_encodings/encodings"].shape
        mel_bins = arrays["encoder/conv1/weight"].shape[1]
        heads = int(arrays["encoder/num_heads"])
        ffn_dim = arrays["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    except KeyError as exc:
        raise CTranslate2FormatError(f"{source}: no Whisper encoder in it ({exc.args[0]} is missing)") from None
    layers = len({match[1] for name in arrays if (match := re.match(r"encoder/layer_(\d+)/", name))})
    return WhisperEncoderShape(d_model=int(d_model), layers=layers, heads=heads, ffn_dim=int(ffn_dim),
                               mel_bins=int(mel_bins), positions=int(positions))


def whisper_encoder_state(arrays: dict[str, np.ndarray], *, positions: int | None = None,
                          source: str = "model.bin") -> dict[str, Any]:
    """The encoder as a ``WhisperEncoder`` / ``Qwen2AudioEncoder`` state dict (float32 tensors).

    Args:
        arrays: :func:`read_ctranslate2`'s result.
        positions: keep the first ``positions`` rows of the sinusoidal position table (an encoder
            that hears clips shorter than Whisper's 30 s: 50 positions a second); all when None.
    """
    import torch

    shape = encoder_shape(arrays, source=source)
    d = shape.d_model
    table = arrays["encoder/position_encodings/encodings"]
    if positions is not None:
        if not 0 < positions <= shape.positions:
            raise ValueError(f"positions must be 1…{shape.positions}, got {positions}")
        table = table[:positions]

    def tensor(name: str) -> Any:
        try:
            return torch.from_numpy(np.ascontiguousarray(arrays[name], dtype=np.float32))
        except KeyError:
            raise CTranslate2FormatError(f"{source}: {name} is missing") from None

    state = {"conv1.weight": tensor("encoder/conv1/weight"), "conv1.bias": tensor("encoder/conv1/bias"),
             "conv2.weight": tensor("encoder/conv2/weight"), "conv2.bias": tensor("encoder/conv2/bias"),
             "embed_positions.weight": torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32)),
             "layer_norm.weight": tensor("encoder/layer_norm/gamma"),
             "layer_norm.bias": tensor("encoder/layer_norm/beta")}
    for index in range(shape.layers):
        ct2, hf = f"encoder/layer_{index}", f"layers.{index}"
        fused_weight, fused_bias = tensor(f"{ct2}/self_attention/linear_0/weight"), tensor(
            f"{ct2}/self_attention/linear_0/bias")
        for start, name in ((0, "q_proj"), (d, "k_proj"), (2 * d, "v_proj")):
            state[f"{hf}.self_attn.{name}.weight"] = fused_weight[start:start + d].clone()
            if name != "k_proj":  # Whisper's key projection has no bias (CTranslate2 stores zeros)
                state[f"{hf}.self_attn.{name}.bias"] = fused_bias[start:start + d].clone()
        state.update({
            f"{hf}.self_attn.out_proj.weight": tensor(f"{ct2}/self_attention/linear_1/weight"),
            f"{hf}.self_attn.out_proj.bias": tensor(f"{ct2}/self_attention/linear_1/bias"),
            f"{hf}.self_attn_layer_norm.weight": tensor(f"{ct2}/self_attention/layer_norm/gamma"),
            f"{hf}.self_attn_layer_norm.bias": tensor(f"{ct2}/self_attention/layer_norm/beta"),
            f"{hf}.fc1.weight": tensor(f"{ct2}/ffn/linear_0/weight"),
            f"{hf}.fc1.bias": tensor(f"{ct2}/ffn/linear_0/bias"),
            f"{hf}.fc2.weight": tensor(f"{ct2}/ffn/linear_1/weight"),
            f"{hf}.fc2.bias": tensor(f"{ct2}/ffn/linear_1/bias"),
            f"{hf}.final_layer_norm.weight": tensor(f"{ct2}/ffn/layer_norm/gamma"),
            f"{hf}.final_layer_norm.bias": tensor(f"{ct2}/ffn/layer_norm/beta"),
        })
    return state
