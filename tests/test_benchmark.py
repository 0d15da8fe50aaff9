"""`tnd-bench` runs end to end at toy sizes and reports the figures the issues ask for."""

from __future__ import annotations

import json

import pytest

from experiments import benchmark


def _rows(capsys, argv):
    benchmark.main(argv + ["--json", "--repeats", "1"])
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


@pytest.mark.slow
def test_core_suite_times_every_path_and_compares_them(capsys):
    rows = _rows(capsys, ["--suite", "core", "--core-neurons", "64", "--core-densities", "0.1",
                          "--core-batch", "2", "--core-seq-len", "3"])
    paths = {r["path"]: r for r in rows if r["model"] == "tnd"}
    assert set(paths) == {"sparse", "dense", "auto"}
    assert paths["auto"]["resolved_path"] == "sparse"  # fan-in ~10 of 64 neurons: below 2.5 * sqrt(64)
    for row in paths.values():
        assert row["timesteps_per_s"] > 0 and row["batch"] == 2 and row["seq_len"] == 3
    (comparison,) = [r for r in rows if r["model"] == "tnd/paths"]
    assert comparison["auto_resolves_to"] == "sparse"
    for key in ("auto_speedup_vs_dense", "sparse_speedup_vs_dense", "sparse_op_rate_vs_dense"):
        assert comparison[key] > 0


@pytest.mark.slow
def test_models_suite_measures_the_tables_tnd_against_the_tables_lstm(capsys):
    from experiments.bench.models import table_model

    model, options, count, obs_shape = table_model(["experiment=pong_table", "model=tnd"])
    assert abs(count - 9000) <= 900 and options["num_neurons"] == model.graph.num_neurons
    rows = _rows(capsys, ["--suite", "models", "--models-budgets", "3000", "--models-names", "lstm,tnd",
                          "--models-no-cfc", "--models-batch", "2", "--models-seq-len", "3",
                          "--models-step-batch", "2"])
    names = [r["model"] for r in rows]
    for name in ("tnd@table", "lstm@table", "state_floor@table", "tnd@table/lstm", "state_floor@table/lstm"):
        assert name in names
    by_name = {r["model"]: r for r in rows}
    assert by_name["tnd@table"]["width"] == f"num_neurons={options['num_neurons']}"
    assert by_name["tnd@table/lstm"]["throughput_vs_lstm"] > 0 and by_name["tnd@table/lstm"]["step_ratio"] > 0
    # the arithmetic floor beside the measured ratio: E*d*K against the LSTM's 4H(F+H), and TND's whole core
    # (plus N*2d*d*K for the leaky channel map and F*S*d for the input), from the table's own (tuned) sizes
    _, lstm, _, _ = table_model(["experiment=pong_table", "model=lstm"])
    graph, d, k = model.graph, options["state_dim"], model.core.inner_rounds
    lstm_macs = 4 * lstm["hidden_size"] * (lstm["encoder_features"] + lstm["hidden_size"])
    assert by_name["tnd@table/lstm"]["graph_macs_ratio"] == pytest.approx(graph.num_edges * d * k / lstm_macs)
    core = graph.num_edges * d * k + graph.num_neurons * 2 * d * d * k + options["encoder_features"] * len(graph.sensory) * d
    assert by_name["tnd@table/lstm"]["core_macs_ratio"] == pytest.approx(core / lstm_macs)


def test_help_lists_every_suites_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--suite", "--core-full", "--models-budgets", "--atari-envs", "--pong-games", "--devices-batch",
                   "--profile-calls", "--seeds-counts"):
        assert option in out, option


@pytest.mark.slow
def test_devices_suite_prints_one_and_two_device_rows(capsys):
    """On a one-device machine the suite forces two host devices in a child process."""
    benchmark.main(["--suite", "devices", "--json", "--repeats", "1", "--devices-batch", "4",
                    "--devices-seq-len", "4", "--devices-models", "lstm"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(r["model"], r["devices"]) for r in rows] == [("lstm@table", 1), ("lstm@table", 2)]
    assert rows[0]["speedup_vs_1"] == 1 and rows[1]["train_timesteps_per_s"] > 0


def test_profile_suite_sums_the_traced_ops_by_kind(capsys):
    from experiments.bench.profile import op_kind

    assert [op_kind(n) for n in ("dot.14", "ynn_fusion.3", "transpose_copy_fusion", "add_tanh_fusion")] == [
        "matmul", "matmul", "transpose", "other"]
    benchmark.main(["--suite", "profile", "--json", "--profile-models", "lstm", "--profile-calls", "1",
                    "--profile-batch", "4", "--profile-seq-len", "8", "--profile-top", "2"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    summary, top = rows[0], rows[1:]
    assert summary["model"] == "lstm@table" and summary["ops_per_timestep"] > 1
    assert summary["step_ms"] == pytest.approx(sum(summary[f"{k}_ms"] for k in ("matmul", "transpose", "other")))
    assert len(top) == 2 and top[0]["ms_per_step"] >= top[1]["ms_per_step"]


@pytest.mark.slow
def test_seeds_suite_compares_separate_and_stacked_steps_and_trainers(capsys):
    benchmark.main(["--suite", "seeds", "--json", "--repeats", "1", "--seeds-counts", "2", "--seeds-models", "rnn",
                    "--seeds-batch", "2", "--seeds-seq-len", "4", "--seeds-train-steps", "3", "--seeds-table-steps", "10"])
    step, trainer = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert (step["model"], step["kind"], step["seeds"], step["one_graph"]) == ("rnn@table", "step", 2, False)
    assert step["speedup"] == pytest.approx(step["separate_ms"] / step["stacked_ms"])
    assert (trainer["kind"], trainer["seeds"]) == ("trainer", 2)
    assert trainer["compile_separate_s"] > 0 and trainer["compile_stacked_s"] > 0 and trainer["step_stacked_ms"] > 0
    projected = ((trainer["compile_separate_s"] + 10 * trainer["step_separate_ms"] / 1e3)
                 / (trainer["compile_stacked_s"] + 10 * trainer["step_stacked_ms"] / 1e3))
    assert trainer["table_speedup"] == pytest.approx(projected)
