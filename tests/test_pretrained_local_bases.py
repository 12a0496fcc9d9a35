"""The pretrained miniature's two bases from files the producer names (issue 28): a CTranslate2
Whisper folder (or its model.bin) and a Qwen2 GGUF file or Hugging Face folder, named by
``$FADERWISE_PRETRAINED_WHISPER`` / ``$FADERWISE_PRETRAINED_LANGUAGE`` or the config file's
``pretrained_whisper`` / ``pretrained_language``, checked as the packages' files are.

The "local copies" are the installed packages' own files (a symlinked Whisper folder, the six GGUF
parts joined into one file); those tests skip, saying so, where ``[alm-pretrained]`` is not
installed. A base that is not the pinned one is built in the test (a tiny Whisper written by
CTranslate2's converter, a tiny Qwen2 saved as a Hugging Face folder). Nothing here assembles the
real base except the test marked slow (twice, about a minute each on 2 cores)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from faderwise.advisor import pretrained
from faderwise.advisor.ctranslate2_whisper import CTranslate2FormatError
from faderwise.advisor.pretrained import (
    LANGUAGE_ENV,
    PACKAGE_BASES,
    WHISPER_ENV,
    WHISPER_SOURCE,
    BaseFormatError,
    BaseMismatchError,
    NamedBases,
    assembled_base,
    base_name,
    checked_language,
    checked_whisper,
    chosen_bases,
    named_bases,
    require_bases,
)
from faderwise.tools.errors import NotAFileError

WHISPER_PIN = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
LANGUAGE_PIN = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
ANY_BASE_USE = ("another base serves alm-pretrained-zero-shot and adapters trained on it "
                "(faderwise train with model: alm-pretrained-base)")
LANGUAGE_KINDS = ("the language base is a Qwen2 GGUF file or a Hugging Face folder of a Qwen2 model "
                  "(config.json, *.safetensors, tokenizer.json)")


def real_bases() -> None:
    modules = [f.module for s in pretrained.SOURCES for f in s.files]
    if any(importlib.util.find_spec(m) is None for m in modules):
        pytest.skip("the real bases are not installed: pip install 'faderwise[alm-pretrained]' (.ci/run does)")


def needs_alm() -> None:
    pytest.importorskip("torch", reason="the [alm] extra: .ci/run installs the CPU build of torch")
    pytest.importorskip("transformers", reason="the [alm] extra")


@pytest.fixture(autouse=True)
def no_named_bases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts with no base named and its own cache, whatever the shell has set."""
    for variable in (WHISPER_ENV, LANGUAGE_ENV, "FADERWISE_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("FADERWISE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The producer's own copies of the pinned bases: a Whisper folder (the installed
    faster-whisper-tiny.en folder, symlinked) and the six GGUF parts joined into one file."""
    real_bases()
    folder = tmp_path_factory.mktemp("copies")
    whisper = folder / "faster-whisper-tiny.en"
    whisper.symlink_to(pretrained.installed_file(WHISPER_SOURCE.files[0]).parent, target_is_directory=True)
    return whisper, pretrained.joined_parts(folder / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")


def corrupted(source: Path, target: Path) -> Path:
    """A copy of ``source`` with its middle byte changed (in the weights: the file still parses)."""
    shutil.copyfile(source, target)
    with target.open("r+b") as stream:
        stream.seek(target.stat().st_size // 2)
        byte = stream.read(1)
        stream.seek(-1, os.SEEK_CUR)
        stream.write(bytes([byte[0] ^ 0xFF]))
    return target


def sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def fake_assembled(folder: Path) -> Path:
    """A cache entry as :func:`assembled_base` recognises one (its settings and config.json)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / pretrained.BASE_SETTINGS).write_text("{}")
    return folder


def never_assemble(*_: object, **__: object) -> None:
    raise AssertionError("assembled again, though the cache holds this base")


# -- naming the bases ----------------------------------------------------------------------------------

def unset_bases(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bases' variables unset for this test, and removed again after it whatever the code under
    test set (``delenv`` of an absent variable alone would leave what the test's load_config sets)."""
    for variable in (WHISPER_ENV, LANGUAGE_ENV):
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)


def test_keywords_win_over_the_environment_and_an_empty_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    assert named_bases() == NamedBases()
    monkeypatch.setenv(WHISPER_ENV, "~/models/faster-whisper-tiny.en")
    monkeypatch.setenv(LANGUAGE_ENV, "")
    assert named_bases() == NamedBases(whisper=Path.home() / "models/faster-whisper-tiny.en")
    assert named_bases(whisper="/w", language=Path("/l.gguf")) == NamedBases(whisper=Path("/w"),
                                                                              language=Path("/l.gguf"))
    assert named_bases(env={LANGUAGE_ENV: "/l.gguf"}) == NamedBases(language=Path("/l.gguf"))


def test_the_config_files_keys_reach_the_resolver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faderwise.agent.config import ConfigError, load_config

    config = tmp_path / "faderwise" / "config.toml"
    config.parent.mkdir()
    config.write_text('pretrained_whisper = "models/faster-whisper-tiny.en"\n'
                      'pretrained_language = "/models/qwen2.gguf"\n')
    env = {"FADERWISE_CONFIG": str(config)}
    loaded = load_config(env)
    assert loaded.pretrained_whisper == config.parent / "models/faster-whisper-tiny.en"  # the file's folder's
    assert loaded.pretrained_language == Path("/models/qwen2.gguf")
    assert named_bases(env=env) == NamedBases(whisper=config.parent / "models/faster-whisper-tiny.en",
                                              language=Path("/models/qwen2.gguf"))
    # the environment wins over the file, as for every setting
    env = {"FADERWISE_CONFIG": str(config), WHISPER_ENV: "/elsewhere"}
    assert load_config(env).pretrained_whisper == Path("/elsewhere")
    assert env[WHISPER_ENV] == "/elsewhere" and env[LANGUAGE_ENV] == "/models/qwen2.gguf"
    # through the process's environment, which the library (and worker processes) read (the
    # variables are handed back as they were after the test: later tests must not see these paths)
    monkeypatch.setenv("FADERWISE_CONFIG", str(config))
    unset_bases(monkeypatch)
    load_config()
    assert named_bases().language == Path("/models/qwen2.gguf")
    config.write_text("pretrained_language = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config({"FADERWISE_CONFIG": str(config)})
    assert str(caught.value) == f"{config}: pretrained_language must be a file or folder path"


@pytest.mark.parametrize("command", [["train", "{tmp}/train.yaml"], ["eval", "run", "{tmp}/eval.yaml", "--out", "{tmp}/o"],
                                     ["eval", "model", "{tmp}/model", "{tmp}/data"], ["run", "{tmp}/script.yaml"],
                                     ["advise", "{tmp}/stems", "--workers", "1"]])
def test_every_command_that_builds_a_model_reads_the_config_files_bases(
        command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """train, eval and run read no other setting of the config file, and advise with --workers
    needed none: the bases named there reached them only through the variables."""
    from faderwise.cli import main

    config = tmp_path / "config.toml"
    config.write_text('pretrained_whisper = "/models/faster-whisper-tiny.en"\n')
    monkeypatch.setenv("FADERWISE_CONFIG", str(config))
    unset_bases(monkeypatch)
    assert main([part.format(tmp=tmp_path) for part in command]) == 2  # each input is missing: one line, exit 2
    assert capsys.readouterr().err.startswith("faderwise: error: ")
    assert os.environ[WHISPER_ENV] == "/models/faster-whisper-tiny.en"
    assert LANGUAGE_ENV not in os.environ


# -- what is refused, in one line ----------------------------------------------------------------------

def test_a_missing_path_a_fifo_and_a_folder_without_model_bin_are_refused(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(BaseFormatError) as caught:
        checked_whisper(missing, pinned=False)
    assert str(caught.value) == (f"{missing}: no such file or folder (the Whisper base named by pretrained_whisper "
                                 "or $FADERWISE_PRETRAINED_WHISPER)")
    with pytest.raises(BaseFormatError) as caught:
        checked_language(missing, pinned=False)
    assert str(caught.value) == (f"{missing}: no such file or folder (the language base named by pretrained_language "
                                 "or $FADERWISE_PRETRAINED_LANGUAGE)")
    fifo = tmp_path / "model.bin"
    os.mkfifo(fifo)
    for check in (checked_whisper, checked_language):
        with pytest.raises(NotAFileError) as caught:
            check(fifo, pinned=False)  # refused from its stat: never opened, so nothing waits for a writer
        assert str(caught.value) == f"{fifo}: is a named pipe (FIFO), not a file; faderwise reads only regular files"
    with pytest.raises(NotAFileError):
        checked_whisper(tmp_path, pinned=False)  # a folder whose model.bin is the FIFO
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BaseFormatError) as caught:
        checked_whisper(empty, pinned=False)
    assert str(caught.value) == (f"{empty}: no model.bin in this folder; the Whisper base is a CTranslate2 Whisper "
                                 "model (a folder such as faster-whisper-tiny.en, or its model.bin)")


def test_what_is_not_a_whisper_model_or_a_qwen2_model_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.bin"
    other.write_bytes(b"not whisper")
    with pytest.raises(CTranslate2FormatError) as caught:
        checked_whisper(other, pinned=False)
    assert str(caught.value) == f"{other}: CTranslate2 binary version 544501614; this reader knows 5, 6"
    with pytest.raises(BaseFormatError) as caught:
        checked_language(other, pinned=False)
    assert str(caught.value) == (f"{other}: not a GGUF file (version 2 or 3); the language base is a Qwen2 GGUF "
                                 "file or a Hugging Face folder of a Qwen2 model")
    llama = tmp_path / "llama.gguf"
    key, value = b"general.architecture", b"llama"
    llama.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
                      + struct.pack("<IQ", 8, len(value)) + value)
    with pytest.raises(BaseFormatError) as caught:
        checked_language(llama, pinned=False)
    assert str(caught.value) == f"{llama}: a GGUF of a llama model, not Qwen2"
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(llama.read_bytes()[:30])
    with pytest.raises(BaseFormatError) as caught:
        checked_language(cut, pinned=False)
    assert str(caught.value) == f"{cut}: not a GGUF file, or cut short (unexpected end of file)"
    folder = tmp_path / "hf"
    folder.mkdir()
    with pytest.raises(BaseFormatError) as caught:
        checked_language(folder, pinned=False)
    assert str(caught.value) == f"{folder}: no config.json in this folder; {LANGUAGE_KINDS}"
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(BaseFormatError) as caught:
        checked_language(folder, pinned=False)
    assert str(caught.value) == f"{folder / 'config.json'}: a llama model, not Qwen2"
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(BaseFormatError) as caught:
        checked_language(folder, pinned=False)
    assert str(caught.value) == f"{folder}: no *.safetensors in this folder; {LANGUAGE_KINDS}"


# -- the producer's copies of the pinned files ---------------------------------------------------------

def test_copies_of_the_pinned_files_are_the_packages_base(copies: tuple[Path, Path], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Named copies whose checksums are the pins are the same base: the same cache folder, which is
    not assembled again; the shipped adapters accept them."""
    whisper, gguf = copies
    bases = chosen_bases(NamedBases(whisper=whisper, language=gguf), pinned=True)
    assert [(b.path, b.form, b.sha256, b.pinned) for b in bases] == [
        (whisper / "model.bin", "ctranslate2", WHISPER_PIN, True), (gguf, "gguf", LANGUAGE_PIN, True)]
    assert base_name(bases=bases) == base_name() == base_name(bases=PACKAGE_BASES)
    cache = tmp_path / "cache"
    packages = fake_assembled(cache / base_name())
    monkeypatch.setattr(pretrained, "assemble", never_assemble)
    assert assembled_base(whisper=whisper, language=gguf) == packages
    assert assembled_base(whisper=whisper / "model.bin", language=gguf, pinned=True) == packages
    monkeypatch.setenv(WHISPER_ENV, str(whisper))
    monkeypatch.setenv(LANGUAGE_ENV, str(gguf))
    assert assembled_base() == packages
    pytest.importorskip("torch", reason="the [alm] extra")
    require_bases()  # what the shipped adapters ask: the copies are the pinned files


def test_a_corrupted_copy_is_refused_for_the_shipped_adapters(copies: tuple[Path, Path], tmp_path: Path) -> None:
    """One byte changed: the shipped adapters refuse it, naming the file and the sha256 expected;
    as another base (zero-shot, one's own adapter) it is accepted, in a cache folder of its own."""
    whisper, gguf = copies
    bad_whisper = corrupted(whisper / "model.bin", tmp_path / "model.bin")
    with pytest.raises(BaseMismatchError) as caught:
        checked_whisper(bad_whisper, pinned=True)
    assert str(caught.value) == (f"{bad_whisper}: sha256 {sha256(bad_whisper)[:12]}…, not {WHISPER_PIN}, the Whisper "
                                 f"tiny.en model.bin the shipped adapters are trained on; {ANY_BASE_USE}")
    bad_gguf = corrupted(gguf, tmp_path / "language.gguf")
    with pytest.raises(BaseMismatchError) as caught:
        checked_language(bad_gguf, pinned=True)
    assert str(caught.value) == (f"{bad_gguf}: sha256 {sha256(bad_gguf)[:12]}…, not {LANGUAGE_PIN}, the "
                                 f"Qwen2.5-Coder-0.5B-Instruct GGUF the shipped adapters are trained on; {ANY_BASE_USE}")
    other = chosen_bases(NamedBases(whisper=bad_whisper, language=gguf), pinned=False)
    assert [b.pinned for b in other] == [False, True]
    names = {base_name(), base_name(bases=other),
             base_name(bases=chosen_bases(NamedBases(language=bad_gguf), pinned=False)),
             base_name(bases=chosen_bases(NamedBases(whisper=bad_whisper, language=bad_gguf), pinned=False))}
    assert len(names) == 4  # two different bases never share a cache folder


def test_a_differing_base_refuses_the_shipped_adapter_in_one_line(copies: tuple[Path, Path], tmp_path: Path,
                                                                  demo_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    needs_alm()
    from faderwise.cli import main

    whisper, _ = copies
    bad = corrupted(whisper / "model.bin", tmp_path / "model.bin")
    monkeypatch.setenv(WHISPER_ENV, str(bad))
    code = main(["advise", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"),
                 "--advisor", "alm-pretrained", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err == (f"faderwise: error: {bad}: sha256 {sha256(bad)[:12]}…, not {WHISPER_PIN}, the Whisper "
                            f"tiny.en model.bin the shipped adapters are trained on; {ANY_BASE_USE}\n")


# -- another base: zero-shot and one's own adapter -----------------------------------------------------

@pytest.fixture(scope="module")
def other_bases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A base that is not the pinned one: a tiny Whisper (CTranslate2's converter) and a tiny Qwen2
    saved as a Hugging Face folder (config.json, model.safetensors, tokenizer.json)."""
    needs_alm()
    pytest.importorskip("ctranslate2", reason="CTranslate2's converter is part of the [dev] extra")
    from tests.test_pretrained_alm import tiny_language_model, tiny_whisper

    folder = tmp_path_factory.mktemp("other-bases")
    model_bin, _ = tiny_whisper(folder / "tiny-whisper")
    model, tokenizer = tiny_language_model(["raise the vocals by 3 dB", "lower the drums by 2 dB", "leave the bass"])
    model.save_pretrained(folder / "tiny-qwen2")
    tokenizer.save_pretrained(folder / "tiny-qwen2")
    return model_bin.parent, folder / "tiny-qwen2"


def test_another_base_serves_zero_shot_and_training_but_not_the_shipped_adapters(
        other_bases: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faderwise.advisor.alm import alm_advisor

    whisper, language = other_bases
    monkeypatch.setenv(WHISPER_ENV, str(whisper))
    monkeypatch.setenv(LANGUAGE_ENV, str(language))
    with pytest.raises(BaseMismatchError) as caught:
        alm_advisor("alm-pretrained")  # the shipped fine-tuned adapter
    assert str(caught.value) == (f"{whisper / 'model.bin'}: a Whisper encoder 64 wide with 2 layers and 80 mel bins; "
                                 "the shipped adapters are trained on Whisper tiny.en's (384 wide, 4 layers, 80 mel "
                                 f"bins); {ANY_BASE_USE}")
    with pytest.raises(BaseMismatchError) as caught:
        checked_language(language, pinned=True)
    assert str(caught.value) == (f"{language}: a Hugging Face folder, not the Qwen2.5-Coder-0.5B-Instruct GGUF (sha256 "
                                 f"{LANGUAGE_PIN}) the shipped adapters are trained on; {ANY_BASE_USE}")
    advisor = alm_advisor("alm-pretrained-zero-shot")  # assembles the other base into a folder of its own
    folder = advisor.folder
    assert folder.parent == tmp_path / "cache" and folder.name != base_name()
    assert folder.name.startswith("alm-pretrained-base-2s-")
    settings = json.loads((folder / pretrained.BASE_SETTINGS).read_text())
    sha_whisper, sha_language = (b.sha256 for b in chosen_bases(named_bases(), pinned=False))
    assert settings["sources"] == [
        {"name": "named-whisper", "named": str(whisper / "model.bin"), "form": "ctranslate2", "sha256": sha_whisper,
         "instead_of": "whisper-tiny.en"},
        {"name": "named-language", "named": str(language), "form": "huggingface", "sha256": sha_language,
         "instead_of": "qwen2.5-coder-0.5b-instruct"}]
    assert sha_whisper == sha256(whisper / "model.bin")
    monkeypatch.setattr(pretrained, "assemble", never_assemble)
    assert assembled_base() == folder  # what training with model: alm-pretrained-base reads
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    model = Qwen2AudioForConditionalGeneration.from_pretrained(folder)
    assert model.config.audio_config.d_model == 64 and model.config.text_config.hidden_size == 64
    assert AutoProcessor.from_pretrained(folder).feature_extractor.feature_size == 80


# -- the real assembly, where asked for ----------------------------------------------------------------

@pytest.mark.slow
def test_the_base_assembled_from_copies_is_the_packages_base(copies: tuple[Path, Path], tmp_path: Path) -> None:
    """The real assembly twice: from the packages and from the copies; the same weights, byte for byte."""
    needs_alm()
    whisper, gguf = copies
    from_packages = assembled_base(cache=tmp_path / "packages")
    from_copies = assembled_base(whisper=whisper, language=gguf, pinned=True, cache=tmp_path / "copies")
    assert from_packages.name == from_copies.name == base_name()
    assert sha256(from_packages / "model.safetensors") == sha256(from_copies / "model.safetensors")
    sources = json.loads((from_copies / pretrained.BASE_SETTINGS).read_text())["sources"]
    assert [s["named"] for s in sources] == [str(whisper / "model.bin"), str(gguf)]
    assert [s["name"] for s in sources] == ["whisper-tiny.en", "qwen2.5-coder-0.5b-instruct"]
