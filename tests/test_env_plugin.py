"""A plugin environment, one module plus one conf/env/<name>.yaml, trains and evaluates from the terminal.

The plugin below registers a tiny pure-JAX env (keep a drifting dot near the centre of a
line, 2 actions, an analytic expert, its own tally, its own drawing and protocol note) with
`tnd.envs.register_env`; the generic pieces (`tnd.envs.batched_games`, the one rollout) do
its collection, evaluation and recording. `tnd-train` collects its demonstrations, trains a
model whose action head has the env's 2 actions and evaluates it with the env's own summary;
`tnd-eval` evaluates the run later, `tnd-render` draws it, and a table names its protocol.
"""

import json
import sys

import numpy as np
import pytest

from experiments import evaluate as eval_entry
from experiments import train as train_entry
from tnd.envs import registry

from train_helpers import TINY, assert_one_readable_error, call_main

MODULE = "my_plugin_env_keep_centred"
ENV = "keep_centred"

PLUGIN = '''
"""Keep a drifting dot near the centre of a line: 2 actions (left, right), pure JAX."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tnd.envs import EnvDefinition, register_env
from tnd.envs.demonstrations import demonstrations_from_games
from tnd.envs.batched_games import collect_expert_games, evaluate_model_games, record_model_games
from tnd.envs.recording import Recording, running_counts
from tnd.envs.spaces import Box, Discrete
from tnd.envs.tally import Tally

LEFT, RIGHT = 0, 1


@dataclasses.dataclass(frozen=True)
class KeepCentredConfig:
    max_steps: int = 40
    push: float = 0.05  # position change of a LEFT/RIGHT step
    drift: float = 0.03  # largest random drift per step
    band: float = 0.1  # |x - 0.5| <= band counts as centred


@struct.dataclass
class Params:
    max_steps: jax.Array
    push: jax.Array
    drift: jax.Array
    band: jax.Array


@struct.dataclass
class State:
    x: jax.Array
    time: jax.Array


class KeepCentred:
    num_actions = 2

    def reset_env(self, key, params):
        state = State(x=jax.random.uniform(key, ()), time=jnp.int32(0))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        move = jnp.where(action == RIGHT, params.push, -params.push)
        x = jnp.clip(state.x + move + params.drift * jax.random.uniform(key, (), minval=-1.0, maxval=1.0), 0.0, 1.0)
        state = State(x=x, time=state.time + 1)
        centred = jnp.abs(x - 0.5) <= params.band
        done = state.time >= params.max_steps
        return self.get_obs(state), state, centred.astype(jnp.float32), done, {"centred": centred}

    def get_obs(self, state):
        return jnp.stack([state.x, 1.0 - state.x]).astype(jnp.float32)

    def observation_space(self, params=None):
        return Box(0.0, 1.0, (2,))

    def action_space(self, params=None):
        return Discrete(self.num_actions)


def expert(state, params):
    return jnp.where(state.x < 0.5, RIGHT, LEFT).astype(jnp.int32)


def step_events(info):
    return {"centred": info["centred"], "off_centre": ~info["centred"], "steps": jnp.ones_like(info["centred"])}


@dataclasses.dataclass(frozen=True)
class CentredTally(Tally):
    headline_metrics = ("centred_fraction",)

    centred: np.ndarray
    off_centre: np.ndarray
    steps: np.ndarray

    def summary(self):
        steps = int(self.steps.sum())
        return {"games": self.num_games, "steps": steps, "centred_fraction": float(self.centred.sum() / steps)}


ENV = KeepCentred()


def env_and_params(config):
    f32 = jnp.float32
    return ENV, Params(jnp.int32(config.max_steps), f32(config.push), f32(config.drift), f32(config.band))


def game_seeds(seed, num_games, stream):
    return (np.random.SeedSequence([seed, stream]).generate_state(num_games) >> 1).astype(np.int64)


def collect(config, *, num_episodes, seed, epsilon, num_envs, progress):
    seeds = game_seeds(seed, num_episodes, 0)
    games = collect_expert_games(ENV, env_and_params(config)[1], seeds, steps=config.max_steps, expert=expert,
                                 epsilon=epsilon, events=step_events, progress=progress)
    return demonstrations_from_games(games, seeds, {"obs_mode": "position"}, catch_event="centred",
                                     miss_event="off_centre")


def evaluate(model, config, *, num_games, seed, num_envs, progress):
    return evaluate_model_games(model, ENV, env_and_params(config)[1], game_seeds(seed, num_games, 1),
                                steps=config.max_steps, events=step_events, tally=CentredTally, progress=progress)


def draw_games(model, config, *, games, seed, steps, progress):
    """The evaluation's games as 8 x 32 frames: the line dark, the dot a white column."""
    seeds = game_seeds(seed, games, 1)
    config = dataclasses.replace(config, max_steps=steps)
    _, trajectory = record_model_games(model, ENV, env_and_params(config)[1], seeds, steps=steps,
                                       events=step_events, tally=CentredTally)
    column = np.clip(np.round(np.asarray(trajectory.states.x).reshape(-1) * 31), 0, 31).astype(int)
    frames = np.zeros((column.size, 8, 32, 3), np.uint8)
    frames[np.arange(column.size), :, column] = 255
    return Recording(env="keep_centred", frames=frames, game=np.repeat(np.arange(games), steps),
                     step=np.tile(np.arange(1, steps + 1), games),
                     counts=running_counts(trajectory.events, ("centred", "off_centre")),
                     seeds=tuple(int(s) for s in seeds), fps=10)


register_env(EnvDefinition(name="keep_centred", config=KeepCentredConfig, make=env_and_params,
                           collect_demonstrations=collect, evaluate_model=evaluate, tally=CentredTally,
                           draw_games=draw_games,
                           table_note="Our runs' environment: {envs}: a dot kept centred, not the paper's {protocol}."))
'''

CONFIG = """# A plugin env (registered by my_plugin_env_keep_centred); options: its KeepCentredConfig fields.
name: keep_centred
options:
  max_steps: 40
  push: 0.05
  drift: 0.03
  band: 0.1
"""


@pytest.fixture
def plugin_env(tmp_path, monkeypatch):
    """The plugin module and its config file in a temporary folder (the launch directory); unregistered after."""
    (tmp_path / f"{MODULE}.py").write_text(PLUGIN)
    (tmp_path / "conf" / "env").mkdir(parents=True)
    (tmp_path / "conf" / "env" / f"{ENV}.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    registry._ENVS.pop(ENV, None)
    sys.modules.pop(MODULE, None)


@pytest.mark.slow
def test_a_plugin_env_is_collected_trained_and_evaluated(plugin_env, monkeypatch, capsys):
    tmp_path = plugin_env
    run, data = tmp_path / "run", tmp_path / "data"
    argv = [*TINY, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"env={ENV}", f"plugins=[{MODULE}]",
            f"data.root={data}", f"hydra.run.dir={run}", "data.epsilon=0.1"]
    assert call_main(train_entry.main, argv, monkeypatch) == 0
    printed = capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env"] == ENV and summary["games"] == 1 and summary["eval_steps"] == 100  # TINY: max_steps=100
    assert 0.0 <= summary["centred_fraction"] <= 1.0 and "catch_rate" not in summary
    assert f"on {ENV}: centred_fraction {summary['centred_fraction']:.4g}; " in printed  # the env's own headline

    from tnd.data.storage import load_demonstrations
    from tnd.app.restore import restore_model

    (dataset,) = data.glob("demos-*")
    demos = load_demonstrations(dataset, num_actions=2)
    assert demos.metadata["env"] == ENV and demos.metadata["epsilon"] == 0.1
    assert demos.metadata["env_config"]["max_steps"] == 100  # the loader's checks, added by the registry
    assert demos.observations.shape == (2 * 100, 2) and set(np.unique(demos.actions)) == {0, 1}
    np.testing.assert_array_equal(demos.catches, demos.rewards > 0)  # the env names its events for the dataset
    model, _, meta = restore_model(run, plugins=[MODULE])
    assert meta["fingerprint"]["num_actions"] == 2 and model.head.out_features == 2  # the action head: the env's

    import tnd.envs

    env, params = tnd.envs.make(ENV, max_steps=7)
    assert env.num_actions == 2 and int(params.max_steps) == 7

    # a later process has not imported the plugin; tnd-eval needs the user's consent to import it
    registry._ENVS.pop(ENV)
    sys.modules.pop(MODULE)
    evaluate = [f"run_dir={run}", "eval.num_games=3", "eval.seed=5", f"hydra.run.dir={tmp_path / 'e'}"]
    assert call_main(eval_entry.main, evaluate, monkeypatch) == 1
    assert_one_readable_error(capsys, f"trained with plugin module(s) {MODULE}", f"plugins=[{MODULE}]")
    assert call_main(eval_entry.main, [*evaluate, f"plugins=[{MODULE}]"], monkeypatch) == 0
    metrics = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert metrics["env"] == ENV and metrics["games"] == 3 and metrics["eval_steps"] == 300 and "centred_fraction" in metrics
    assert ENV in tnd.envs.env_names()

    # tnd-render draws the run with the env's own drawing, its counts in name-value pairs
    from tnd.app.render import render_run
    from tnd.evaluation.render import RenderOptions

    result = render_run(run, tmp_path / "agent.gif", RenderOptions(steps=12, progress=False, plugins=(MODULE,)))
    assert result.shape[0] == 12 and result.recording.env == ENV
    assert result.lines[-1][-1].startswith("centred ") and " off_centre " in result.lines[-1][-1]


def _load_plugin(plugin_env, monkeypatch):
    """Imports the plugin module (it registers its env) and returns the env's definition."""
    import importlib

    from tnd.envs import get_env

    monkeypatch.syspath_prepend(str(plugin_env))
    importlib.import_module(MODULE)
    return get_env(ENV)


def test_a_plugin_env_draws_its_games_with_their_counts(plugin_env, monkeypatch):
    from flax import nnx

    from tnd.evaluation.render import annotate, overlay_lines
    from tnd.models import build_model

    env = _load_plugin(plugin_env, monkeypatch)
    model = build_model("rnn", obs_shape=(2,), num_actions=2, rngs=nnx.Rngs(0), hidden_size=4)
    config = env.make_config({"max_steps": 40})
    recording = env.draw_games(model, config, games=2, seed=3, steps=6, progress=False)
    assert recording.frames.shape == (12, 8, 32, 3) and recording.env == ENV
    tally = env.evaluate(model, env.make_config({"max_steps": 6}), num_games=2, seed=3)  # the same games
    lines = overlay_lines(recording, "rnn")
    assert lines[5][-1] == f"centred {tally.centred[0]}  off_centre {tally.off_centre[0]}"
    assert lines[-1] == ("rnn  step 6", "game 2/2", f"centred {tally.centred[1]}  off_centre {tally.off_centre[1]}")
    framed = annotate(recording.frames, lines)  # a header above each frame
    assert framed.shape[0] == 12 and framed.shape[1] > 8 and framed.shape[2] == 32


def test_a_table_of_a_plugin_env_carries_the_env_s_own_protocol_note(plugin_env, monkeypatch):
    from tnd.evaluation.table.aggregation import Table
    from tnd.evaluation.table.render import render_markdown

    _load_plugin(plugin_env, monkeypatch)
    text = render_markdown(Table(rows=(), envs=(ENV,)))
    assert f"Our runs' environment: {ENV}: a dot kept centred, not the paper's " in text
    assert "(another protocol)" in text  # the paper's figures are labelled as another protocol's
    pong = render_markdown(Table(rows=(), envs=("pong",)))
    assert "Our runs' environment: pong (single-player Pong, the paper's protocol)." in pong
    assert "(another protocol)" not in pong
    atari = render_markdown(Table(rows=(), envs=("atari_pong",)))
    assert "Our runs' environment: atari_pong: Atari Pong against the built-in opponent, not the paper's " in atari
    unknown = render_markdown(Table(rows=(), envs=("not_imported_env",)))
    assert "Our runs' environment: not_imported_env; the paper's protocol is " in unknown
