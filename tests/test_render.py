"""tnd-render: animations of a trained run's greedy policy, with the running counts on each frame."""

import dataclasses

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from omegaconf import OmegaConf

from experiments import render as render_entry
from experiments import render_pong
from tnd.envs.pong import PongConfig, SinglePlayerPong, game_seeds, step_events, to_params
from tnd.envs.pong import render as pong_render
from tnd.envs.rollout import Policy, rollout
from tnd.app.render import render_run
from tnd.evaluation.render import RenderOptions, header
from tnd.app.experiment import eval_env_config, run_experiment
from tnd.app.restore import restore_model

from train_helpers import TINY, compose_cfg, data_root  # noqa: F401

RUN_NAME = "model=rnn,seed=0"  # a multirun folder name: '=' and ',' must work


def _train(folder, data_root, *overrides):  # noqa: F811
    spec = OmegaConf.to_object(compose_cfg("tnd_train", [*TINY, f"data.root={data_root}", "train.eval_every=0", *overrides]))
    run_experiment(spec, folder)
    return folder


@pytest.fixture(scope="module")
def pong_run(tmp_path_factory, data_root):  # noqa: F811
    """One tiny trained pong run (~10 s) in a folder named like a multirun job."""
    return _train(tmp_path_factory.mktemp("sweep") / RUN_NAME, data_root, "model=rnn")


def _gif(path) -> np.ndarray:
    return iio.imread(path)[..., :3]


def _tally(run, steps: int, games: int, seed: int):
    """The evaluation code's tally of the same games (independent of the renderer)."""
    from tnd.envs import get_env

    model, spec, _ = restore_model(run)
    model.eval()
    env = get_env(spec.env.name)
    config = dataclasses.replace(eval_env_config(env, spec.env.options, spec.eval), max_steps=steps)
    return env.evaluate(model, config, num_games=games, seed=seed, num_envs=1)


def _last_of_each_game(values: np.ndarray, game: np.ndarray) -> np.ndarray:
    return np.asarray(values)[np.flatnonzero(np.diff(game, append=-1) != 0)]


def _one_error_line(capsys, *fragments: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tnd-render: error: "), captured.err
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- no training needed
def test_recorded_trace_sums_to_the_tallies():
    config = PongConfig(max_steps=80, max_catches_per_round=3)
    seeds = jnp.asarray(game_seeds(0, 3), jnp.int32)

    def down(carry, obs, _states, _keys):
        actions = jnp.full((obs.shape[0],), 2, jnp.int32)
        return carry, actions, actions

    @jax.jit
    def play(seeds):
        keys = jax.vmap(jax.random.key)(seeds)
        policy = Policy(lambda games: jnp.zeros(()), down)
        return rollout(SinglePlayerPong(), policy, keys, to_params(config), config.max_steps, events=step_events, record=True)

    tally, trace = play(seeds)
    assert trace.states.ball_x.shape == (80, 3)
    for name, total in tally.items():
        np.testing.assert_array_equal(trace.events[name].sum(0), total, err_msg=name)
    assert int(tally["misses"].sum()) > 0  # a paddle stuck at the bottom misses


def test_frames_drawn_in_chunks_equal_frames_drawn_at_once():
    config = PongConfig()
    keys = jax.vmap(jax.random.key)(jnp.arange(5))
    _, states = jax.vmap(SinglePlayerPong().reset_env, (0, None))(keys, to_params(config))
    whole = pong_render.render_frames(states, to_params(config), 40)
    np.testing.assert_array_equal(pong_render.render_frames(states, to_params(config), 40, chunk=2), whole)
    assert whole.shape == (5, *pong_render.frame_shape(40), 3)


@pytest.mark.parametrize("argv, fragments", [
    (["{tmp}/no_such_run"], ["does not exist"]),
    (["{tmp}"], ["No checkpoints in"]),
    (["{tmp}", "--out", "{tmp}/agent.avi"], ["Unsupported animation format '.avi'", "use .gif or .mp4"]),
    (["{tmp}", "--steps", "0"], ["steps must be a positive integer"]),
])
def test_bad_input_exits_2_with_one_line(argv, fragments, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert render_entry.main(argv) == 2
    _one_error_line(capsys, *fragments)
    assert not list(tmp_path.glob("*.avi")) and not (tmp_path / "agent.gif").exists()


def test_mp4_without_a_plugin_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pong_render, "MP4_PLUGINS", ("no_such_mp4_plugin_module",))
    assert render_entry.main([str(tmp_path), "--out", str(tmp_path / "a.mp4")]) == 2
    _one_error_line(capsys, "pip install imageio-ffmpeg", ".gif")


def test_expert_renderer_draws_its_running_catch_count(tmp_path, capsys):
    out = tmp_path / "expert.gif"
    assert render_pong.main(["--steps", "40", "--out", str(out), "--pixels-per-unit", "60"]) == 0
    frames = _gif(out)
    assert frames.shape[0] == 41  # the start position and one frame per step
    recording = render_pong.expert_recording(40, 0, 0.0, 60)
    assert recording.counts["catches"][-1] >= 1 and recording.counts["misses"][-1] == 0  # the expert never misses
    assert "wrote" in capsys.readouterr().out


# --------------------------------------------------------------------------- a trained pong run
@pytest.mark.slow  # the shared tiny training run takes ~10 s
def test_gif_has_one_frame_per_step_and_the_evaluation_counts(pong_run, tmp_path):
    steps, games, seed = 60, 2, 5
    result = render_run(pong_run, tmp_path / "agent.gif", RenderOptions(steps=steps, games=games, seed=seed, progress=False))
    frames = _gif(result.path)
    assert frames.shape == result.shape and frames.shape[0] == steps * games
    rec = result.recording
    court = frames[:, frames.shape[1] - rec.frames.shape[1]:]  # below the header
    assert len({court[t].tobytes() for t in range(0, steps, 10)}) > 1, "the court changes over time"

    tally = _tally(pong_run, steps, games, seed)
    for name in ("catches", "misses"):
        np.testing.assert_array_equal(_last_of_each_game(rec.counts[name], rec.game), getattr(tally, name), err_msg=name)
    for g in range(games):
        last = result.lines[(g + 1) * steps - 1]
        assert last[0].endswith(f"step {steps}") and last[1] == f"game {g + 1}/{games}"
        assert last[2] == f"catches {tally.catches[g]}  misses {tally.misses[g]}"
    # what is on screen is that text: the last frame's header, drawn again, matches the GIF's pixels
    drawn = header(result.lines[-1], rec.frames.shape[2])
    np.testing.assert_array_equal(frames[-1, : drawn.shape[0]], drawn)


@pytest.mark.slow  # the shared tiny training run takes ~10 s
def test_cli_writes_into_the_run_folder_by_default(pong_run, capsys):
    assert render_entry.main([str(pong_run), "--steps", "30", "--scale", "2", "--no-progress"]) == 0
    out = pong_run / "agent.gif"
    frames = _gif(out)
    assert frames.shape[0] == 30 and frames.shape[2] == 2 * pong_render.frame_shape(160)[1]
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "eval seed 1000003" in printed  # default: the run's eval.seed


# --------------------------------------------------------------------------- Atari
@pytest.mark.slow
def test_atari_frames_show_catches_and_score(tmp_path, data_root):  # noqa: F811
    run = _train(tmp_path / "model=lstm,seed=0", data_root, "env=atari_pong", "model=lstm", "env.options.max_steps=60",
                 "eval.num_envs=1", "data.num_envs=2")
    steps = 40
    result = render_run(run, tmp_path / "atari.gif", RenderOptions(steps=steps, progress=False))
    frames = _gif(result.path)
    assert frames.shape[0] == steps and frames.shape[2] == 160  # ALE's screen width
    assert len({f.tobytes() for f in frames}) > 1
    tally = _tally(run, steps, 1, result.seed)
    won, lost = int(tally.points_won[0]), int(tally.points_lost[0])
    assert result.lines[-1][1] == f"catches {tally.catches[0]}  score {won - lost:+d} ({won}-{lost})"
