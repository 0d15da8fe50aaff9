"""tnd.app.sweep.choose: one table from two finished sweeps, each row kept from the sweep better on validation games."""

from pathlib import Path

import pytest

from tnd.app.sweep import Expected, SweepError
from tnd.app.sweep.choose import Candidate, choose_by_validation, render_choice, validation_records
from tnd.evaluation.robustness import RunMeasurement
from tnd.evaluation.table import RunRecord

EXPECTED = Expected(row_keys=None, variants=None, models=["lstm", "rnn"], seeds=[0, 1])


def sweep(name: str, test: dict[str, list[float]], validation: dict[str, list[float]]) -> Candidate:
    """A finished sweep: per model, each seed's test-game and validation-game catch rate."""
    records, measurements = [], []
    for model, rates in test.items():
        for seed, (rate, held_out) in enumerate(zip(rates, validation[model])):
            path = Path(name) / f"model={model},seed={seed}"
            records.append(RunRecord(model, seed, "ok", path, metrics={"model": model, "seed": seed, "env": "pong",
                                                                        "catch_rate": rate, "score": 10 * rate}))
            measurements.append(RunMeasurement(model, seed, str(path), {"none": {"catch_rate": held_out,
                                                                                  "score": 10 * held_out}}))
    return Candidate(name, records, measurements)


TUNED = sweep("tuned", test={"lstm": [0.9, 0.8], "rnn": [0.5, 0.6]}, validation={"lstm": [0.7, 0.7], "rnn": [0.4, 0.4]})
UNTUNED = sweep("untuned", test={"lstm": [0.2, 0.3], "rnn": [0.95, 0.85]},
                validation={"lstm": [0.6, 0.6], "rnn": [0.5, 0.5]})


def test_each_row_keeps_the_sweep_better_on_validation_and_shows_its_test_games():
    choice = choose_by_validation([TUNED, UNTUNED], expected=EXPECTED)
    assert dict(choice.chosen) == {"LSTM": "tuned", "Vanilla RNN": "untuned"}
    rows = {row.model: row for row in choice.table.rows}
    assert rows["lstm"].stats["catch_rate"].mean == pytest.approx(0.85)  # the test games of the kept sweep
    assert rows["rnn"].stats["catch_rate"].mean == pytest.approx(0.9)
    assert rows["rnn"].seeds == (0, 1) and not choice.table.n_problems
    text = render_choice(choice)
    assert "| Vanilla RNN | 0.400 ± 0.000 | 0.500 ± 0.000 | 4.00 ± 0.00 | 5.00 ± 0.00 | **untuned** |" in text
    assert "## The kept runs on their test games" in text


def test_the_choice_never_looks_at_the_test_games():
    """Swapping the test figures between the sweeps leaves the choice as it was."""
    swapped = [sweep("tuned", test={"lstm": [0.2, 0.3], "rnn": [0.95, 0.85]},
                     validation={"lstm": [0.7, 0.7], "rnn": [0.4, 0.4]}),
               sweep("untuned", test={"lstm": [0.9, 0.8], "rnn": [0.5, 0.6]},
                     validation={"lstm": [0.6, 0.6], "rnn": [0.5, 0.5]})]
    assert choose_by_validation(swapped, expected=EXPECTED).chosen == choose_by_validation(
        [TUNED, UNTUNED], expected=EXPECTED).chosen


def test_a_tie_keeps_the_first_sweep_listed():
    twin = sweep("twin", test={"lstm": [0.1, 0.1], "rnn": [0.1, 0.1]}, validation={"lstm": [0.7, 0.7], "rnn": [0.4, 0.4]})
    assert set(choose_by_validation([TUNED, twin], expected=EXPECTED).chosen.values()) == {"tuned"}
    assert set(choose_by_validation([twin, TUNED], expected=EXPECTED).chosen.values()) == {"twin"}


def test_different_finished_seeds_are_refused():
    short = sweep("short", test={"lstm": [0.9, 0.8], "rnn": [0.5]}, validation={"lstm": [0.7, 0.7], "rnn": [0.9]})
    with pytest.raises(SweepError, match=r"Vanilla RNN: the sweeps do not hold the same finished seeds.*finish every"):
        choose_by_validation([TUNED, short], expected=EXPECTED)


def test_a_finished_run_without_a_validation_measurement_is_refused():
    with pytest.raises(SweepError, match="no validation measurement.*tnd-table --validation"):
        validation_records(TUNED.records, TUNED.validation[1:])


def test_one_sweep_or_repeated_names_are_refused():
    with pytest.raises(SweepError, match="two or more sweeps with distinct names"):
        choose_by_validation([TUNED], expected=EXPECTED)
    with pytest.raises(SweepError, match="two or more sweeps with distinct names"):
        choose_by_validation([TUNED, TUNED], expected=EXPECTED)
