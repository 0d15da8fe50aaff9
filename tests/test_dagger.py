"""DAgger on the JAX Pong at tiny sizes: the mixed games, the schedule, the loop's resume, bad input."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnd.app import dagger
from tnd.app.dagger import DaggerError, beta_for_round, validate_dagger
from tnd.app.experiment import config_hash, run_experiment
from tnd.app.spec import load_spec
from tnd.envs import get_env
from tiny_models import TinyRNN
from tnd.models.base import SequenceModel
from tnd.models.encoders import make_io
from tnd.envs.pong import (
    PongConfig,
    SinglePlayerPong,
    collect_demonstrations,
    collect_mixed,
    expert_action,
    to_params,
)
from tnd.envs.pong.expert import DEFAULT_AIM, DEFAULT_DEADBAND
from tnd.envs.rollout import step_key
from tnd.training.config import DaggerSpec, from_dict, to_dict

CONFIG = PongConfig(max_steps=80)


def _episode(demos, e):
    start = demos.episode_starts[e]
    end = start + demos.episode_lengths[e]
    return slice(int(start), int(end))


def test_labels_are_the_experts_actions_on_the_students_states():
    demos = collect_mixed(CONFIG, TinyRNN(rngs=nnx.Rngs(0)), beta=0.3, num_episodes=2, seed=5, progress=False)
    assert demos.num_steps == 2 * CONFIG.max_steps
    assert (demos.taken_actions != demos.actions).any(), "the student acted somewhere (else the test shows nothing)"
    env, params = SinglePlayerPong(), to_params(CONFIG)
    step = jax.jit(env.step_env)
    for e, seed in enumerate(demos.seeds):  # replay the executed actions; the expert reads each state
        part = _episode(demos, e)
        key = jax.random.key(int(seed))
        obs, state = env.reset_env(key, params)
        for t, (label, taken) in enumerate(zip(demos.actions[part], demos.taken_actions[part])):
            np.testing.assert_allclose(np.asarray(obs), demos.observations[part][t], atol=1e-6)
            assert int(expert_action(state, params, DEFAULT_AIM, DEFAULT_DEADBAND)) == int(label), (e, t)
            env_key, _ = jax.random.split(step_key(key, jnp.int32(t)))
            obs, state, *_ = step(env_key, state, jnp.int32(taken), params)
    assert 0.0 <= demos.metadata["student_agreement"] <= 1.0 and demos.metadata["beta"] == 0.3


def test_beta_zero_executes_the_students_choices():
    demos = collect_mixed(CONFIG, TinyRNN(rngs=nnx.Rngs(1)), beta=0.0, num_episodes=2, seed=3, progress=False)
    agree = float(np.mean(demos.taken_actions == demos.actions))
    assert demos.metadata["student_agreement"] == pytest.approx(agree)


def test_beta_one_gives_behavior_clonings_data():
    mixed = collect_mixed(CONFIG, TinyRNN(rngs=nnx.Rngs(2)), beta=1.0, num_episodes=3, seed=11, progress=False)
    plain = collect_demonstrations(CONFIG, num_episodes=3, seed=11, epsilon=0.0, progress=False)
    for name in ("observations", "actions", "taken_actions", "rewards", "catches", "misses", "episode_starts", "seeds"):
        np.testing.assert_array_equal(getattr(mixed, name), getattr(plain, name), err_msg=name)


def test_linear_beta_schedule_as_imitation():
    spec = DaggerSpec(rounds=4, beta_rampdown_rounds=2)
    assert [beta_for_round(spec, r) for r in range(5)] == [1.0, 0.5, 0.0, 0.0, 0.0]
    assert beta_for_round(DaggerSpec(beta_rampdown_rounds=0), 1) == 0.0
    assert beta_for_round(DaggerSpec(beta=0.25), 3) == 0.25


@pytest.mark.parametrize("settings, fragment", [
    ({"rounds": -1}, "dagger.rounds must be an integer >= 0"),
    ({"rounds": 1, "games_per_round": 0}, "dagger.games_per_round must be a positive integer"),
    ({"rounds": 1, "steps_per_round": 0}, "dagger.steps_per_round must be a positive integer"),
    ({"beta_rampdown_rounds": -2}, "dagger.beta_rampdown_rounds must be an integer >= 0"),
    ({"beta": 1.5}, "dagger.beta must lie in [0, 1]"),
    ({"beta": -0.1}, "dagger.beta must lie in [0, 1]"),
])
def test_bad_settings_are_one_line(settings, fragment):
    with pytest.raises(DaggerError, match=fragment.replace("[", r"\[").replace("]", r"\]")) as err:
        validate_dagger(DaggerSpec(**settings))
    assert "\n" not in str(err.value)


def test_env_without_collect_mixed_is_one_line():
    env = dataclasses.replace(get_env("pong"), name="no_labels", collect_mixed=None)
    with pytest.raises(DaggerError, match="env 'no_labels' has no collect_mixed.*Envs with DAgger: atari_pong, pong"):
        validate_dagger(DaggerSpec(rounds=1), env)
    validate_dagger(DaggerSpec(rounds=0), env)  # off: any env


def test_off_by_default_keeps_the_config_hash():
    spec = load_spec(["experiment=smoke"])
    assert spec.dagger == DaggerSpec() and "dagger" not in to_dict(spec)
    on = dataclasses.replace(spec, dagger=DaggerSpec(rounds=2))
    assert config_hash(on) != config_hash(spec)
    assert from_dict(to_dict(on)).dagger == on.dagger and from_dict(to_dict(spec)).dagger == DaggerSpec()


TINY = ["experiment=smoke", "model=lstm", "model.options.hidden_size=8", "train.steps=4", "train.log_every=2",
        "train.checkpoint_every=2", "train.eval_every=0", "train.batch_size=2", "train.window=8",
        "env.options.max_steps=60", "eval.num_games=1", "dagger.rounds=2", "dagger.games_per_round=2",
        "dagger.steps_per_round=3", "dagger.beta_rampdown_rounds=2"]


def _spec(root):
    return load_spec([*TINY, f"data.root={root}"])


def _outcome(run):
    rounds = [json.loads((run / "dagger" / f"round_{r}" / "round.json").read_text()) for r in range(3)]
    summary = json.loads((run / "summary.json").read_text())
    return [r["data_sha256"] for r in rounds], summary["params_sha256"], summary["dataset_steps"]


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """A tiny DAgger run of two rounds, never interrupted: its data cache and outcome."""
    root = tmp_path_factory.mktemp("dagger")
    windows = []  # what every round trains on
    make_windows = dagger.make_windows

    def recording(*args, **kwargs):
        windows.append(make_windows(*args, **kwargs))
        return windows[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dagger, "make_windows", recording)
        run_experiment(_spec(root / "data"), root / "whole")
    rows = [json.loads(line) for line in (root / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert [r["dagger_round"] for r in rows if "dagger_round" in r] == [1, 2], "one metrics row per round"
    return root / "data", _outcome(root / "whole"), windows


@pytest.mark.slow
def test_every_round_trains_on_arrays_of_one_shape(whole_run):
    """The aggregate grows each round, but its arrays have room for the last round's (games at
    the env's step cap): the train step compiles once, and each round draws only its own data."""
    *_, windows = whole_run
    assert len(windows) == 3  # rounds 0, 1, 2
    assert len({tuple(w.observations.shape) for w in windows}) == 1
    assert windows[0].observations.shape[0] == 3 * 2 * 60  # 2 expert games + 2 rounds x 2 games, 60 steps each
    assert [w.num_windows for w in windows] == [(r + 1) * 2 * 60 - 8 + 1 for r in range(3)]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["before_collecting", "before_training"])
def test_interrupted_run_resumes_to_the_same_data_and_parameters(tmp_path, monkeypatch, where, whole_run):
    data, whole, _ = whole_run
    spec = _spec(data)
    assert whole[2] == 3 * 2 * 60, "expert data (2 games) and two rounds of 2 games"

    class Stop(Exception):
        pass

    games, train_until = dagger._Dagger.games, dagger._Dagger.train_until

    def stop_games(self, r, beta):  # Ctrl-C after round 1 is done, before round 2's games are played
        if r == 2:
            raise Stop
        return games(self, r, beta)

    def stop_training(self, end):  # after round 2's games are stored, before its training
        if end == 10:
            raise Stop
        return train_until(self, end)

    if where == "before_collecting":
        monkeypatch.setattr(dagger._Dagger, "games", stop_games)
    else:
        monkeypatch.setattr(dagger._Dagger, "train_until", stop_training)
    with pytest.raises(Stop):
        run_experiment(spec, tmp_path / "cut")
    assert (tmp_path / "cut" / "dagger" / "round_1" / "round.json").is_file()
    assert not (tmp_path / "cut" / "dagger" / "round_2" / "round.json").exists()
    monkeypatch.undo()
    run_experiment(spec, tmp_path / "cut")
    assert _outcome(tmp_path / "cut") == whole


def test_tnd_train_says_bad_dagger_settings_in_one_line(tmp_path, monkeypatch, capsys):
    from train_helpers import assert_one_readable_error, call_main

    from experiments import train as train_entry

    status = call_main(train_entry.main, ["experiment=smoke", "dagger.rounds=1", "dagger.steps_per_round=0",
                                          f"hydra.run.dir={tmp_path}"], monkeypatch)
    assert status != 0
    assert_one_readable_error(capsys, "dagger.steps_per_round must be a positive integer when dagger.rounds > 0")


# ------------------------------------------------------------------ Atari Pong (host emulators, RAM expert)
def _atari_student(config):
    from tnd.envs.atari_pong import obs_shape

    class Tiny(SequenceModel):
        def __init__(self, rngs):
            self.encoder, self.head = make_io(obs_shape(config), 8, 8, 3, rngs=rngs)
            self.cell = nnx.SimpleCell(8, 8, rngs=rngs)

        def initial_state(self, batch_size):
            return jnp.zeros((batch_size, 8))

        def core_step(self, carry, features):
            return self.cell(carry, features)

    return Tiny(nnx.Rngs(0))


@pytest.mark.slow
def test_atari_labels_are_the_experts_actions_on_the_students_states():
    from tnd.envs.atari_pong import AtariPongConfig, PongBatch, host_rollout
    from tnd.envs.atari_pong import collect_mixed as atari_mixed
    from tnd.envs.atari_pong.expert import ScriptedExpert, ShotSelector

    config = AtariPongConfig(max_steps=60)
    demos = atari_mixed(config, _atari_student(config), beta=0.3, num_episodes=2, seed=4, num_envs=2, progress=False)
    assert demos.num_steps == 120 and (demos.taken_actions != demos.actions).any()
    assert 0.0 <= demos.metadata["student_agreement"] <= 1.0
    batch = PongBatch(config, 2)  # replay the executed actions; a fresh expert labels the states they reach
    expert = ScriptedExpert(2, frameskip=config.frameskip, shots=ShotSelector(batch))
    t = np.zeros(2, int)

    def act(obs, ram, reset, active, games):
        t[reset] = 0
        labels = expert.act(ram, reset)
        taken = np.array([demos.taken_actions[_episode(demos, int(g))][min(t[i], 59)] for i, g in enumerate(games)])
        expert.executed(taken)
        t[active] += 1
        return labels, taken

    try:
        _, episodes = host_rollout(config, act, num_games=2, seed=4, num_envs=2, record=True, progress=False,
                                   batch=batch)
    finally:
        batch.close()
    np.testing.assert_array_equal(np.concatenate([e.labels for e in episodes]), demos.actions)
    np.testing.assert_allclose(np.concatenate([e.observations for e in episodes]), demos.observations)


@pytest.mark.slow
def test_atari_beta_one_gives_behavior_clonings_data():
    from tnd.envs.atari_pong import AtariPongConfig
    from tnd.envs.atari_pong import collect_demonstrations as atari_demos
    from tnd.envs.atari_pong import collect_mixed as atari_mixed

    config = AtariPongConfig(max_steps=60)
    mixed = atari_mixed(config, _atari_student(config), beta=1.0, num_episodes=2, seed=2, num_envs=2, progress=False)
    plain = atari_demos(config, num_episodes=2, seed=2, epsilon=0.0, num_envs=2, progress=False)
    for name in ("observations", "actions", "taken_actions", "rewards", "catches", "misses", "episode_starts", "seeds"):
        np.testing.assert_array_equal(getattr(mixed, name), getattr(plain, name), err_msg=name)
