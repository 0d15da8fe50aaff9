"""Atari Pong observation modes (objects, pixels, ram; a history of k steps) and the
alignment of stored labels with the observations the expert acted on."""

import copy

import numpy as np
import pytest

from tnd.envs import get_env
from tnd.envs.atari_pong import (
    DOWN, NUM_ACTIONS, RAM_AGENT_Y, RAM_BALL_X, RAM_BALL_Y, RAM_OPPONENT_Y, STAY, UP, AtariConfigError, AtariPong, AtariPongConfig, FrameResizer, PongBatch,
    collect_demonstrations, game_seed, objects_from_ram, obs_shape, ram_features,
)
from tnd.envs.atari_pong import collect as collect_module

FRAME = (24, 20)  # small frames keep the pixel tests fast
EXPECTED_SHAPES = {  # mode -> (k = 1, k = 4)
    "objects": ((5,), (20,)),
    "ram": ((128,), (512,)),
    "pixels": (FRAME, (4, *FRAME)),
}


def _play(config, steps, *, rows=2, seed=3, screens=None):
    """Observations ``[steps + 1, rows, *obs]`` of ``rows`` games under random actions, and
    the RAM; ``screens`` (a list) receives each step's grey screens ``[rows, 210, 160]``."""
    rng = np.random.default_rng(seed)
    with PongBatch(config, rows) as batch:
        for i in range(rows):
            batch.reset_row(i, seed + i)
        obs, ram = [], []
        for t in range(steps + 1):
            if t:
                batch.step(rng.integers(0, NUM_ACTIONS, rows))
            obs.append(batch.observations())
            ram.append(batch.ram.copy())
            if screens is not None:
                screens.append(np.stack([ale.getScreenGrayscale() for ale in batch._ales]))
    return np.stack(obs), np.stack(ram)


@pytest.mark.parametrize("mode", sorted(EXPECTED_SHAPES))
@pytest.mark.parametrize("k", [1, 4])
def test_shapes_dtype_and_space(mode, k):
    config = AtariPongConfig(obs_mode=mode, obs_history=k, frame_size=FRAME, noop_max=3)
    shape = EXPECTED_SHAPES[mode][k == 4]
    assert obs_shape(config) == shape
    assert AtariPong(config).observation_space().shape == shape
    assert get_env("atari_pong").obs_shape(config) == shape
    obs, _ = _play(config, 6)
    assert obs.shape == (7, 2, *shape) and obs.dtype == np.float32
    assert obs.min() >= 0.0 and obs.max() <= 1.0


@pytest.mark.parametrize("mode", ["objects", "pixels"])
def test_history_one_is_the_single_step_observation(mode):
    """k = 1 gives today's observations: objects from the RAM, one grey frame."""
    config = AtariPongConfig(obs_mode=mode, frame_size=FRAME, noop_max=3)
    screens = []
    obs, ram = _play(config, 20, screens=screens)
    if mode == "objects":
        np.testing.assert_array_equal(obs, objects_from_ram(ram))
    else:
        resize = FrameResizer(FRAME)
        np.testing.assert_array_equal(obs, [[resize(s) for s in step] for step in screens])


@pytest.mark.parametrize("mode", sorted(EXPECTED_SHAPES))
def test_history_stacks_the_last_steps_oldest_first(mode):
    single, _ = _play(AtariPongConfig(obs_mode=mode, frame_size=FRAME, noop_max=3), 12)
    stacked, _ = _play(AtariPongConfig(obs_mode=mode, obs_history=4, frame_size=FRAME, noop_max=3), 12)
    stacked = stacked.reshape(13, 2, 4, *single.shape[2:])
    for t in range(13):
        for j in range(4):  # slot j holds step t - 3 + j; before the game's start, its first observation
            np.testing.assert_array_equal(stacked[t, :, j], single[max(t - 3 + j, 0)])


def test_ram_mode_is_the_ram_in_unit_range():
    obs, ram = _play(AtariPongConfig(obs_mode="ram", noop_max=3), 5)
    np.testing.assert_array_equal(obs, ram.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(ram_features(ram), obs)


def test_history_resets_at_a_new_game():
    config = AtariPongConfig(obs_history=3, noop_max=0)
    with PongBatch(config, 2) as batch:
        batch.reset_row(0, 1)
        batch.reset_row(1, 2)
        for _ in range(40):
            batch.step(np.array([UP, DOWN]))
        assert not np.array_equal(batch.observations()[0, :5], batch.observations()[0, -5:])
        other = batch.observations()[1].copy()
        batch.reset_row(0, 5)
        first = objects_from_ram(batch.ram[0])
        np.testing.assert_array_equal(batch.observations()[0], np.tile(first, 3))  # filled with the first
        np.testing.assert_array_equal(batch.observations()[1], other)  # other rows untouched
        batch.step(np.array([STAY, STAY]), np.array([True, False]))
        np.testing.assert_array_equal(batch.observations()[0, :10], np.tile(first, 2))
        np.testing.assert_array_equal(batch.observations()[0, 10:], objects_from_ram(batch.ram[0]))


def test_bad_observation_settings_are_one_line():
    with pytest.raises(AtariConfigError, match="obs_mode 'rgb'.*objects, pixels, ram"):
        AtariPongConfig(obs_mode="rgb")
    with pytest.raises(AtariConfigError, match="obs_history must be >= 1"):
        AtariPongConfig(obs_history=0)
    for bad in (2.5, "4", True):
        with pytest.raises(AtariConfigError, match="obs_history must be an integer"):
            AtariPongConfig(obs_history=bad)
    assert issubclass(AtariConfigError, ValueError)
    with pytest.raises(ValueError, match="obs_history"):
        get_env("atari_pong").make_config({"obs_history": -1})


def test_an_unknown_expert_is_one_line():
    with pytest.raises(AtariConfigError, match="Unknown expert 'oracle': valid experts are lookahead, rule"):
        AtariPongConfig(expert="oracle")


def test_the_expert_option_addresses_data_only_when_it_is_the_rule():
    """The default (lookahead) expert leaves the env config's dict as it was; the rule expert
    and its offset are part of it, so its datasets have their own address."""
    env = get_env("atari_pong")
    assert "expert" not in env.config_dict(AtariPongConfig(rule_offset=9.0))
    rule = env.config_dict(AtariPongConfig(expert="rule", rule_offset=13))
    assert rule["expert"] == "rule" and rule["rule_offset"] == 13.0


def test_make_expert_builds_the_configured_shot_selection():
    from tnd.envs.atari_pong.expert import ShotSelector, make_expert

    with PongBatch(AtariPongConfig(max_steps=4), 2) as batch:
        lookahead = make_expert(AtariPongConfig(), batch, 2)
        rule = make_expert(AtariPongConfig(expert="rule", rule_offset=11.0), batch, 2)
    assert isinstance(lookahead.shots, ShotSelector) and lookahead.shots.batch is batch
    assert rule.shots is None and list(rule.aim_offsets) == [11.0]


def test_the_rule_expert_labels_from_positions_alone():
    """The rule expert reads only what the objects observation shows: scrambling every other
    RAM byte leaves its labels unchanged (the lookahead expert also reads the emulator)."""
    from tnd.envs.atari_pong.expert import make_expert

    _, ram = _play(AtariPongConfig(noop_max=0, max_steps=400), 300, rows=2)
    scrambled = np.random.default_rng(0).integers(0, 256, ram.shape, dtype=np.uint8)
    shown = [RAM_BALL_X, RAM_BALL_Y, RAM_AGENT_Y, RAM_OPPONENT_Y]
    scrambled[..., shown] = ram[..., shown]
    config = AtariPongConfig(expert="rule")
    original, other = make_expert(config, None, 2), make_expert(config, None, 2)
    labels = []
    for t in range(ram.shape[0]):
        reset = np.full(2, t == 0)
        labels.append(original.act(ram[t], reset))
        np.testing.assert_array_equal(labels[-1], other.act(scrambled[t], reset))
    assert len(np.unique(labels)) == NUM_ACTIONS  # it moved both ways: the comparison means something


def test_config_dict_of_the_default_history_is_unchanged():
    """Datasets address their env config: the default history leaves it as it was."""
    env = get_env("atari_pong")
    assert "obs_history" not in env.config_dict(AtariPongConfig())
    assert env.config_dict(AtariPongConfig(obs_history=4))["obs_history"] == 4
    assert env.config_dict(env.make_config({"obs_history": 1})) == {
        "obs_mode": "objects", "frameskip": 4, "repeat_action_probability": 0.25, "noop_max": 30,
        "max_steps": 10000, "frame_size": [84, 84],
    }


@pytest.mark.parametrize("mode,k", [("ram", 2), ("objects", 3)])
def test_collected_metadata_names_mode_and_history(mode, k, tmp_path):
    from tnd.data.storage import load_demonstrations, save_demonstrations

    config = AtariPongConfig(obs_mode=mode, obs_history=k, max_steps=8, noop_max=2)
    demos = collect_demonstrations(config, num_episodes=1, seed=0, progress=False)
    meta = demos.metadata
    assert meta["obs_mode"] == mode and meta["obs_history"] == k
    assert meta["env_config"]["obs_mode"] == mode and meta["env_config"]["obs_history"] == k
    assert demos.observations.shape == (8, *obs_shape(config))
    save_demonstrations(demos, tmp_path / "d")
    back = load_demonstrations(tmp_path / "d", num_actions=NUM_ACTIONS)
    np.testing.assert_array_equal(back.observations, demos.observations)  # ram: stored as uint8, exactly
    assert back.metadata["obs_history"] == k


# ------------------------------------------------------------------------- alignment
ALIGN = AtariPongConfig(max_steps=150, repeat_action_probability=0.25, noop_max=30, frameskip=4)
ALIGN_SEED, ALIGN_GAMES = 4, 2


@pytest.fixture(scope="module")
def spied_collection():
    """Two expert games (sticky 0.25, no-op starts, epsilon 0.2) with every call of the
    expert recorded: the RAM it was given and the labels it returned, and the executed actions."""
    calls = []
    real = collect_module.make_expert

    def spied_expert(config, batch, rows):
        expert = real(config, batch, rows)
        act, executed = expert.act, expert.executed

        def spy_act(ram, reset=None):
            labels = act(ram, reset)
            calls.append({"ram": ram.copy(), "reset": reset.copy(), "labels": labels.copy()})
            return labels

        def spy_executed(taken):
            calls[-1]["taken"] = np.asarray(taken).copy()
            return executed(taken)

        expert.act, expert.executed = spy_act, spy_executed
        return expert

    collect_module.make_expert = spied_expert
    try:
        demos = collect_demonstrations(ALIGN, num_episodes=ALIGN_GAMES, seed=ALIGN_SEED, epsilon=0.2,
                                       num_envs=ALIGN_GAMES, progress=False)
    finally:
        collect_module.make_expert = real
    return demos, calls


def test_labels_belong_to_the_observation_the_expert_acted_on(spied_collection):
    demos, calls = spied_collection
    assert len(calls) == ALIGN.max_steps  # both games run side by side, one row each
    for g in range(ALIGN_GAMES):
        lo, hi = demos.episode_starts[g], demos.episode_starts[g] + demos.episode_lengths[g]
        ram = np.stack([c["ram"][g] for c in calls])
        np.testing.assert_array_equal(demos.observations[lo:hi], objects_from_ram(ram))
        np.testing.assert_array_equal(demos.actions[lo:hi], [c["labels"][g] for c in calls])
        np.testing.assert_array_equal(demos.taken_actions[lo:hi], [c["taken"][g] for c in calls])
        assert [bool(c["reset"][g]) for c in calls] == [True] + [False] * (ALIGN.max_steps - 1)
    assert (demos.actions != demos.taken_actions).any()  # epsilon: some executed actions differ


def _outcomes(batch, rng, previous):
    """The RAM after one step of each action from the row-0 state now, with the same sticky draws."""
    state, out = batch.snapshot(0), []
    for a in range(NUM_ACTIONS):
        batch.restore(0, state)
        batch._rngs[0], batch._previous[0] = copy.deepcopy(rng), previous
        batch.step(np.array([a]))
        out.append(batch.ram[0].copy())
    batch.restore(0, state)
    batch._rngs[0], batch._previous[0] = copy.deepcopy(rng), previous
    return out


def test_executed_actions_move_the_game_to_the_next_observation(spied_collection):
    """Replaying each game from its seed: the first observation follows the no-op start
    (frame number = 4 x no-ops), and the executed action at t leads to observation t + 1
    (through frameskip 4 and the sticky draws), where other actions would often have led
    elsewhere. Where no sticky draw repeated the previous action, up moves the paddle up
    relative to down."""
    demos, calls = spied_collection
    up_above_down = decisive = 0
    starts = []
    for g in range(ALIGN_GAMES):
        lo = demos.episode_starts[g]
        with PongBatch(ALIGN, 1) as batch:
            batch.reset_row(0, game_seed(ALIGN_SEED, g))
            ale = batch._ales[0]
            noops = ale.getEpisodeFrameNumber() // ALIGN.frameskip
            assert ale.getEpisodeFrameNumber() == noops * ALIGN.frameskip
            starts.append(noops)
            np.testing.assert_array_equal(batch.observations()[0], demos.observations[lo])
            for t in range(ALIGN.max_steps - 1):
                taken = int(demos.taken_actions[lo + t])
                after = _outcomes(batch, batch._rngs[0], batch._previous[0])
                draws = copy.deepcopy(batch._rngs[0]).random(ALIGN.frameskip)
                batch.step(np.array([taken]))
                obs = demos.observations[lo + t + 1]
                np.testing.assert_array_equal(batch.observations()[0], obs)
                np.testing.assert_array_equal(objects_from_ram(after[taken]), obs)
                assert ale.getEpisodeFrameNumber() == (noops + t + 1) * ALIGN.frameskip
                decisive += sum(not np.array_equal(objects_from_ram(r), obs) for r in after) == 2
                if (draws >= ALIGN.repeat_action_probability).all():  # no sticky repeat in this step
                    y = [int(r[RAM_AGENT_Y]) for r in after]
                    assert y[UP] <= y[DOWN]
                    up_above_down += y[UP] < y[DOWN]
    assert up_above_down > 50 and decisive > ALIGN.max_steps, (up_above_down, decisive)
    assert max(starts) > 0 and len(set(starts)) == ALIGN_GAMES, starts  # the games had no-op starts


def test_run_hash_of_the_default_history_is_unchanged():
    """Runs recorded before ``obs_history`` existed (no such option) keep their config hash."""
    import dataclasses

    from tnd.app.experiment import config_hash
    from tnd.app.spec import load_spec

    spec = load_spec(["env=atari_pong"])
    assert spec.env.options["obs_history"] == 1
    before = {k: v for k, v in spec.env.options.items() if k not in ("obs_history", "expert", "rule_offset")}
    old = dataclasses.replace(spec, env=dataclasses.replace(spec.env, options=before))
    assert config_hash(spec) == config_hash(old)
    assert config_hash(load_spec(["env=atari_pong", "env.options.obs_history=4"])) != config_hash(spec)


def test_run_hash_names_the_rule_expert_and_its_offset_only():
    """The lookahead expert (the default) leaves a run's hash as it was, whatever rule_offset
    says; the rule expert and its offset are part of it."""
    from tnd.app.experiment import config_hash
    from tnd.app.spec import load_spec

    def hashed(*overrides):
        return config_hash(load_spec(["env=atari_pong", *overrides]))

    assert hashed() == hashed("env.options.rule_offset=9")
    assert len({hashed(), hashed("env.options.expert=rule"),
                hashed("env.options.expert=rule", "env.options.rule_offset=9")}) == 3
