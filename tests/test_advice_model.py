"""Advice and GainMove: the JSON every advisor writes and `faderwise apply` reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faderwise.advisor.model import ADVICE_SCHEMA, Advice, AdviceFormatError, GainMove, read_advice


def sample() -> Advice:
    return Advice(advisor="measured", moves=(GainMove("vocals", -4.0, -4.1, -3.9), GainMove.exact("drums", 3.0)),
                  text="Lower the vocals by about 4 dB.", evidence={"mode": "same-material"}, global_offset_db=-1.5)


def test_json_round_trip(tmp_path: Path) -> None:
    payload = sample().to_json()
    assert payload == {
        "format": "faderwise.advice/1", "advisor": "measured",
        "moves": [{"stem": "vocals", "delta_db": -4.0, "low_db": -4.1, "high_db": -3.9},
                  {"stem": "drums", "delta_db": 3.0, "low_db": 3.0, "high_db": 3.0}],
        "global_offset_db": -1.5, "text": "Lower the vocals by about 4 dB.", "evidence": {"mode": "same-material"},
    }
    path = tmp_path / "advice.json"
    path.write_text(json.dumps(payload))
    assert read_advice(path) == sample()


def test_schema_names_every_field() -> None:
    assert set(ADVICE_SCHEMA["properties"]) == {"format", "advisor", "moves", "global_offset_db", "text", "evidence"}
    assert ADVICE_SCHEMA["properties"]["moves"]["items"]["required"] == ["stem", "delta_db"]


def test_hand_written_advice_needs_only_stem_and_delta() -> None:
    advice = Advice.from_json({"advisor": "me", "moves": [{"stem": "bass", "delta_db": 2}]})
    assert advice.moves == (GainMove("bass", 2.0, 2.0, 2.0),) and advice.global_offset_db == 0.0


@pytest.mark.parametrize(("payload", "message"), [
    ([], "advice: expected a JSON object, got list"),
    ({"moves": []}, "advice: missing advisor"),
    ({"advisor": "x", "moves": {}}, "advice: 'moves' must be a list"),
    ({"advisor": "x", "moves": [{"stem": "bass"}]}, "advice: move 0 needs a 'stem' name and a numeric 'delta_db'"),
    ({"advisor": "x", "moves": [{"stem": "bass", "delta_db": "3"}]},
     "advice: move 0 needs a 'stem' name and a numeric 'delta_db'"),
    ({"advisor": "x", "moves": [{"stem": "bass", "delta_db": 1}, {"stem": "bass", "delta_db": 2}]},
     "advice: more than one move for bass"),
    ({"advisor": "x", "moves": [{"stem": "bass", "delta_db": 3, "low_db": 4, "high_db": 5}]},
     "move for 'bass': range [4.0, 5.0] dB does not hold 3.0 dB"),
    ({"advisor": "x", "moves": [], "global_offset_db": None}, "advice: 'global_offset_db' must be a number"),
])
def test_malformed_advice(payload: object, message: str) -> None:
    with pytest.raises(AdviceFormatError) as raised:
        Advice.from_json(payload)
    assert str(raised.value) == message


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(AdviceFormatError, match=r"advice.json: no such file$"):
        read_advice(tmp_path / "advice.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(AdviceFormatError, match=r"bad.json: not valid JSON"):
        read_advice(tmp_path / "bad.json")


def test_non_finite_moves_are_refused() -> None:
    with pytest.raises(AdviceFormatError, match=r"must be finite"):
        GainMove.exact("vocals", float("inf"))
