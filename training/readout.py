"""The amount's readout: the output layer's rows for a move's digits, fitted by linear probing.

An audio-language model fine-tuned with LoRA can hear the size of a move and still not say it. On
the pretrained miniature (``advisor/models/pretrained-differential``, 600 steps of one item), the
language model's last hidden state where the answer's amount begins holds the size: a ridge probe
reads it to 0.77 dB on 100 validation items it was not fitted on (2.82 dB for the best constant),
yet the model states about the same amount for every move. The output layer has to turn that
hidden state into digits, and a digit-by-digit tokenizer (Qwen2's) writes "11" with the "1" of
"1.5": the first token is not monotonic in the size, so no linear readout can choose it, and 900
more steps of stochastic gradient at one item a step did not find a readout either (measured:
every answer 8.5, then 11 dB).

So the amounts are spelled with two digits ("by about 07.5 dB",
:data:`~faderwise.advisor.explain.SPELLINGS`), which makes each token follow the size, and the
rows of the output layer for those tokens get a readout fitted in closed form on the training
items' hidden states, as the linear-probing step of LP-FT does (Kumar et al., 2022, "Fine-Tuning can
Distort Pretrained Features"): a multinomial logistic regression of the next amount token on the
hidden state, with the model's own logits as its offset and an L2 penalty. It is stored as a LoRA
adapter on ``lm_head`` of rank ``k`` (one per readout token): ``A`` holds the ``k`` fitted rows,
``B`` puts each on its token's logit, and the scale is 1, so PEFT loads it as any other adapter and
every other token's logit is unchanged. The constrained decoding reads the amount through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faderwise.advisor.constrained import answer_sentence
from faderwise.advisor.explain import is_leave
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.json_files import write_json
from faderwise.tools.outputs import output_file

READOUT_TOKENS = (*"0123456789", ".", " dB")
"""The tokens whose logits the readout sets: the digits, the decimal point and the unit that ends
the amount (at every step of an amount the grammar allows only some of them)."""
LORA_PREFIX = "base_model.model.lm_head"
"""Where PEFT keeps a LoRA on the output layer in a saved adapter's tensors."""


class ReadoutError(FaderwiseError):
    """A readout that cannot be fitted or stored (a tokenizer that splits a readout token, no moved item)."""


@dataclass(frozen=True)
class ReadoutData:
    """The hidden states where an amount's tokens are predicted, with what comes next.

    Attributes:
        hidden: ``(positions, width)`` float32, the language model's last hidden state (after its
            final norm: what the output layer reads).
        offsets: ``(positions, k)`` float32, the model's own logits of :data:`READOUT_TOKENS` there.
        targets: ``(positions,)`` int64, the index in :data:`READOUT_TOKENS` of the token that follows.
        items: how many items the positions come from.
        token_ids: the tokenizer's id of each of :data:`READOUT_TOKENS`.
        vocabulary: the output layer's rows (the model's vocabulary).
    """

    hidden: Any
    offsets: Any
    targets: Any
    items: int
    token_ids: list[int]
    vocabulary: int


@dataclass(frozen=True)
class Readout:
    """A fitted readout: its ``(k, width)`` weights, the tokens they set, and what the model
    settings record of the fit (:attr:`facts`)."""

    weights: Any
    token_ids: list[int]
    vocabulary: int
    facts: dict[str, Any]


def readout_token_ids(tokenizer: Any) -> list[int]:
    """The token id of each of :data:`READOUT_TOKENS`.

    Raises:
        ReadoutError: the tokenizer writes one of them as several tokens.
    """
    ids = []
    for text in READOUT_TOKENS:
        found = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(found) != 1:
            raise ReadoutError(f"the tokenizer writes {text!r} as {len(found)} tokens; the readout needs one each")
        ids.append(int(found[0]))
    return ids


def collect_readout_data(model: Any, tokenizer: Any, examples: Sequence[Any], *, items: int, spelling: str,
                         inputs_of: Callable[[Any, str], dict[str, Any]]) -> ReadoutData:
    """Teacher-forced passes over the first ``items`` moved items of ``examples`` (their answers
    spelled as ``spelling`` says), keeping each position that predicts a token of the amount, from
    its first digit to the unit.

    Args:
        model: the PEFT model (its base's language model and output layer are read).
        examples: :class:`~faderwise.training.train.Example` items; leaves are skipped (no amount).
        inputs_of: the model's inputs for an example and its answer, with ``labels`` (as a training
            step encodes them: the trainer's own encoding, dtype and device).

    Raises:
        ReadoutError: no item of ``examples`` states a move.
    """
    import torch

    token_ids = readout_token_ids(tokenizer)
    index = {token: position for position, token in enumerate(token_ids)}
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden, offsets, targets = [], [], []
    moved = [example for example in examples if not is_leave(example.target_move_db)][:items]
    if not moved:
        raise ReadoutError("none of the items states a move: the readout has no amount to learn")
    with torch.no_grad():
        for example in moved:
            inputs = dict(inputs_of(example, answer_sentence(example.target, example.target_move_db, spelling=spelling)))
            labels = inputs.pop("labels")[0]
            states = base.model(**inputs).last_hidden_state[0]
            answer_tokens = [(position, int(token)) for position, token in enumerate(labels.tolist()) if token >= 0]
            span = _amount_span([token for _, token in answer_tokens], token_ids)
            for position, token in answer_tokens[span]:
                state = states[position - 1]  # the state before a token predicts it
                hidden.append(state.float().cpu())
                offsets.append(base.lm_head(state)[token_ids].float().cpu())
                targets.append(index[token])
    return ReadoutData(hidden=torch.stack(hidden), offsets=torch.stack(offsets), targets=torch.tensor(targets),
                       items=len(moved), token_ids=token_ids, vocabulary=int(base.lm_head.weight.shape[0]))


def _amount_span(tokens: list[int], token_ids: list[int]) -> slice:
    """The answer's tokens from the amount's first digit to its unit (``" dB"``)."""
    digits, unit = set(token_ids[:10]), token_ids[-1]
    first = next(position for position, token in enumerate(tokens) if token in digits)
    return slice(first, tokens.index(unit, first) + 1)


def fit_readout(data: ReadoutData, *, l2: float, iterations: int = 500) -> Readout:
    """The readout fitted to ``data``: the multinomial logistic regression of ``targets`` on
    ``hidden``, with ``offsets`` added to its logits, minimising the mean cross-entropy plus
    ``l2`` times the squared norm of the weights (L-BFGS from zero, so with no data it changes nothing)."""
    import torch

    weights = torch.zeros(len(READOUT_TOKENS), data.hidden.shape[1], dtype=torch.float32, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights], max_iter=iterations, line_search_fn="strong_wolfe")

    def loss() -> Any:
        optimizer.zero_grad()
        value = (torch.nn.functional.cross_entropy(data.offsets + data.hidden @ weights.T, data.targets)
                 + l2 * weights.pow(2).sum())
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(loss)
    fitted = weights.detach()
    facts = {"items": data.items, "positions": int(data.targets.numel()), "l2": l2, "tokens": list(READOUT_TOKENS),
             "accuracy_before": round(readout_accuracy(data), 4),
             "accuracy_after": round(readout_accuracy(data, fitted), 4)}
    return Readout(weights=fitted, token_ids=data.token_ids, vocabulary=data.vocabulary, facts=facts)


def readout_accuracy(data: ReadoutData, weights: Any | None = None) -> float:
    """The share of positions whose most likely readout token is the one that follows (the model's
    own logits alone when ``weights`` is None)."""
    logits = data.offsets if weights is None else data.offsets + data.hidden @ weights.T
    return float((logits.argmax(dim=1) == data.targets).double().mean())


def write_readout(folder: Path, readout: Readout) -> None:
    """Add ``readout`` to the LoRA adapter saved in ``folder``: ``lm_head`` joins its target modules
    at rank ``k`` and scale 1 (``rank_pattern``/``alpha_pattern``), ``A`` the fitted rows and ``B``
    one 1 per readout token, in the adapter's own dtype.

    Raises:
        ReadoutError: ``folder`` holds no LoRA adapter, one that already has a readout, or an rsLoRA one.
    """
    import torch
    from safetensors.torch import load_file, save_file

    config_path, tensors_path = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not config_path.is_file() or not tensors_path.is_file():
        raise ReadoutError(f"{folder}: no LoRA adapter to add a readout to")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("use_rslora"):
        raise ReadoutError(f"{folder}: an rsLoRA adapter scales by alpha / sqrt(r); the readout needs scale 1")
    tensors = load_file(tensors_path)
    if any(name.startswith(LORA_PREFIX) for name in tensors):
        raise ReadoutError(f"{folder}: the adapter already has a readout on lm_head")
    dtype = next(iter(tensors.values())).dtype
    rank = len(readout.token_ids)
    selection = torch.zeros(readout.vocabulary, rank, dtype=dtype)
    selection[list(readout.token_ids), torch.arange(rank)] = 1.0
    tensors[f"{LORA_PREFIX}.lora_A.weight"] = readout.weights.to(dtype).contiguous()
    tensors[f"{LORA_PREFIX}.lora_B.weight"] = selection
    targets = config["target_modules"]
    config["target_modules"] = f"(?:{targets})|lm_head" if isinstance(targets, str) else [*targets, "lm_head"]
    config["rank_pattern"] = {**(config.get("rank_pattern") or {}), "lm_head": rank}
    config["alpha_pattern"] = {**(config.get("alpha_pattern") or {}), "lm_head": rank}  # scale alpha / r = 1
    with output_file(tensors_path, force=True) as staging:
        save_file(tensors, staging, metadata={"format": "pt"})
    write_json(config_path, config, force=True)
