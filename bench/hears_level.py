"""Benchmark: does a differential model's audio encoder keep the size of a level difference?

For each model folder, one held-out target clip is heard at B's level and at A = B + g dB for
several g; the fifth input of the model's representation (``bundle+delta``: features A − B;
``bundle+ruler``: the level ruler) goes through the model's audio encoder and projector, and the
script prints the distance between the outputs for every pair of gains, in units of the distance
between −1 dB and +1 dB. An encoder that keeps the size of a difference puts +1 dB and +9 dB about
four units apart (8 dB against 2 dB); one that keeps only its sign (its layer norms scale a
constant offset away) puts them much closer than one unit.

    python bench/hears_level.py data/runs/rendered-delta/final data/runs/rendered-ruler/final
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

GAINS_DB = (-9.0, -3.0, -1.0, 1.0, 3.0, 9.0)
REPO = Path(__file__).resolve().parents[1]


def encoded_fifth(model: Any, processor: Any, representation: str, clip: Any, gain_db: float) -> Any:
    """The model's audio encoder and projector output for the fifth input of ``representation``
    when the target is ``clip`` in B and ``clip`` raised by ``gain_db`` in A (one flat vector)."""
    import torch

    from faderwise.advisor.alm import ALM_RATE, fifth_input

    modules = dict(model.named_modules())
    tower = next(m for name, m in modules.items() if name.endswith("audio_tower"))
    projector = next(m for name, m in modules.items() if name.endswith("multi_modal_projector"))
    features = processor.feature_extractor([clip * 10 ** (gain_db / 20), clip], sampling_rate=ALM_RATE,
                                           return_tensors="pt")["input_features"]
    with torch.no_grad():
        return projector(tower(fifth_input(representation, features[0], features[1])[None]).last_hidden_state[0]).flatten()


def main() -> None:
    import torch

    from faderwise.advisor.alm import load_model, model_representation
    from faderwise.training.train import load_examples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--dataset", type=Path, default=REPO / "data" / "synth-rendered")
    args = parser.parse_args()
    clip = load_examples(args.dataset, "val", variant="differential", limit=1)[0].clips[2]  # a target in B
    for folder in args.models:
        representation = model_representation(folder)
        model, processor = load_model(folder)
        outputs = {gain: encoded_fifth(model, processor, representation, clip, gain) for gain in GAINS_DB}
        unit = float(torch.linalg.norm(outputs[1.0] - outputs[-1.0]))
        print(f"\n{folder} ({representation}): distance between the encoded fifth inputs, A − B gain in dB, "
              "in units of the distance from −1 to +1 dB")
        print("        " + "".join(f"{gain:+7.0f}" for gain in GAINS_DB))
        for gain, output in outputs.items():
            row = [float(torch.linalg.norm(output - other)) / unit for other in outputs.values()]
            print(f"{gain:+7.0f} " + "".join(f"{value:7.2f}" for value in row))


if __name__ == "__main__":
    main()
