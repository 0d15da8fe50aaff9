"""Atari Pong (gymnasium + ale-py ``ALE/Pong-v5``) with the agent on the right paddle.

What this module does: builds one configured Pong environment (`make_env`), a batch of
them that steps only the games still in play (`PongBatch`), turns emulator RAM or the
screen into the model's observation (`objects_from_ram`, `FrameResizer`), and describes
the configured game as ``tnd.envs.make("atari_pong")`` returns it (`AtariPong`: spaces and
action count; gymnasium and ALE load only when emulators are built).

* Actions are reduced to {0 stay, 1 up, 2 down} (`NUM_ACTIONS` = 3) and mapped to the
  minimal ALE action indices NOOP (0), RIGHT (2: paddle **up**), LEFT (3: paddle down).
  Pong serves by itself after every point, so FIRE is never needed.
* Observation modes (`AtariPongConfig.obs_mode`), one step's observation (k = 1):
    ``objects``  ``[5]`` float32 from RAM: ball x, ball y, agent paddle y, opponent paddle
                 y, each normalised to [0, 1], and a flag that is 1 while no ball is in
                 play (ball x/y are then 0). No velocities: one step shows no motion.
    ``pixels``   ``frame_size`` ``[H, W]`` float32 grey frame in [0, 1], area-downsampled
                 from the 210x160 screen.
    ``ram``      ``[128]`` float32: ALE's 128-byte RAM, each byte / 255 (in [0, 1]); the
                 RAM holds the paddles' and ball's positions and more of the game's state.
* History (`AtariPongConfig.obs_history` = k >= 1): each observation is the last k steps'
  observations of the row's game, oldest first: ``objects`` ``[5 k]`` and ``ram`` ``[128 k]``
  (the k vectors concatenated), ``pixels`` ``[k, H, W]`` (channels first; k = 4 is the
  Atari frame stack). At a game's first step the history is k copies of its first
  observation. k = 1 gives exactly the single-step observations above. Velocities (ball
  and paddle motion) can be read from one observation only with k >= 2; the ball's speed
  is also in the RAM of one step (bytes 56, 58).
* Every step also exposes the full RAM (``[128]`` uint8): the expert and the catch tracker
  read it, in every observation mode.

Why a batch of plain ``gym.make`` envs and not a gymnasium/ale-py vector env: we need RAM
in every mode (ale-py's native ``AtariVectorEnv`` returns stacked frames only and rejects
``obs_type="ram"``), a known seed per *game* (gymnasium's autoreset reseeds nothing and
resets on the next step), and finished rows that stop stepping while other games run on.
Measured here, Sync/Async vectorisation gives no more steps/s than one env (the emulator is
the whole cost), so `PongBatch` is the same loop without those constraints (and without
the ROM reload that reseeding an ALE env costs; see `PongBatch`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

import numpy as np

from tnd.envs.spaces import Box, Discrete

if TYPE_CHECKING:
    import gymnasium

STAY, UP, DOWN = 0, 1, 2
NUM_ACTIONS = 3
ENV_ID = "ALE/Pong-v5"

# RAM addresses (docs/design.md).
RAM_BALL_X, RAM_BALL_Y = 49, 54
RAM_AGENT_Y, RAM_OPPONENT_Y = 51, 50
RAM_OPPONENT_SCORE, RAM_AGENT_SCORE = 13, 14
RAM_BALL_DX, RAM_BALL_DY = 58, 56
NO_BALL_X = 205  # ball x while no ball is in play

# Observation normalisation ranges (measured extents of each coordinate).
BALL_X_RANGE = (0.0, 205.0)
BALL_Y_RANGE = (0.0, 210.0)
PADDLE_Y_RANGE = (0.0, 210.0)

# Reduced action -> index into ALE Pong's minimal action set
# (NOOP, FIRE, RIGHT, LEFT, RIGHTFIRE, LEFTFIRE).
ALE_ACTIONS = np.array([0, 2, 3], np.int64)  # stay, up (RIGHT), down (LEFT)

OBS_MODES = ("objects", "pixels", "ram")
EXPERTS = ("lookahead", "rule")  # the scripted expert's shot selection (tnd.envs.atari_pong.expert)
DEFAULT_EXPERT = "lookahead"  # left out of `AtariPongConfig.to_dict` at this value (dataset addresses)
OBJECT_FEATURES = 5  # objects mode: features per step
RAM_SIZE = 128  # ALE's RAM bytes (ram mode: features per step)
DEFAULT_OBS_HISTORY = 1  # left out of `AtariPongConfig.to_dict` at this value (dataset addresses)


class AtariConfigError(ValueError):
    """An invalid Atari Pong configuration."""


@dataclasses.dataclass(frozen=True)
class AtariPongConfig:
    """How to build the Pong environment (ALE v5 defaults for frameskip and stickiness), and
    which scripted expert plays it (`tnd.envs.atari_pong.expert.make_expert`)."""

    obs_mode: str = "objects"  # "objects" | "pixels" | "ram"
    frameskip: int = 4
    repeat_action_probability: float = 0.25
    noop_max: int = 30  # random number of NOOP agent steps in [0, noop_max] after reset
    max_steps: int = 10_000  # agent steps per game (truncation)
    frame_size: tuple[int, int] = (84, 84)  # pixels mode
    obs_history: int = DEFAULT_OBS_HISTORY  # observations of the last k steps in each observation
    expert: str = DEFAULT_EXPERT  # "lookahead" (shots by emulator play-outs) | "rule" (one contact offset)
    rule_offset: float = 12.0  # the rule expert's contact offset in px (measured best at stickiness 0.25)

    def __post_init__(self):
        if self.obs_mode not in OBS_MODES:
            raise AtariConfigError(
                f"Unknown obs_mode '{self.obs_mode}': valid modes are {', '.join(OBS_MODES)}."
            )
        if isinstance(self.obs_history, bool) or not isinstance(self.obs_history, (int, np.integer)):
            raise AtariConfigError(
                f"obs_history must be an integer >= 1 (the number of steps per observation), got {self.obs_history!r}."
            )
        if self.obs_history < 1:
            raise AtariConfigError(
                f"obs_history must be >= 1 (the number of steps per observation), got {self.obs_history}."
            )
        object.__setattr__(self, "obs_history", int(self.obs_history))
        if self.expert not in EXPERTS:
            raise AtariConfigError(f"Unknown expert '{self.expert}': valid experts are {', '.join(EXPERTS)}.")
        object.__setattr__(self, "rule_offset", float(self.rule_offset))
        if self.frameskip < 1:
            raise AtariConfigError(f"frameskip must be >= 1, got {self.frameskip}.")
        if not 0.0 <= self.repeat_action_probability < 1.0:
            raise AtariConfigError(
                f"repeat_action_probability must lie in [0, 1), got {self.repeat_action_probability}."
            )
        if self.noop_max < 0 or self.max_steps < 1:
            raise AtariConfigError(f"Need noop_max >= 0 and max_steps >= 1, got {self.noop_max}, {self.max_steps}.")
        size = tuple(int(s) for s in self.frame_size)
        if len(size) != 2 or min(size) < 20:
            raise AtariConfigError(f"frame_size must be two sizes >= 20 (e.g. (84, 84)), got {self.frame_size}.")
        object.__setattr__(self, "frame_size", size)

    def to_dict(self) -> dict:
        """JSON-able form (stored in dataset metadata, part of a dataset's address).

        ``obs_history`` is left out at its default (1), and ``expert`` with ``rule_offset``
        when the expert is the lookahead one: the configs written before they existed keep
        their dict, so their datasets keep their addresses.
        """
        d = dataclasses.asdict(self)
        d["frame_size"] = list(self.frame_size)
        if self.obs_history == DEFAULT_OBS_HISTORY:
            del d["obs_history"]
        if self.expert == DEFAULT_EXPERT:
            del d["expert"], d["rule_offset"]
        return d


def step_obs_shape(config: AtariPongConfig) -> tuple[int, ...]:
    """Shape of one step's observation: ``(5,)`` objects, ``frame_size`` pixels, ``(128,)`` ram."""
    if config.obs_mode == "pixels":
        return tuple(config.frame_size)
    return (RAM_SIZE,) if config.obs_mode == "ram" else (OBJECT_FEATURES,)


def obs_shape(config: AtariPongConfig) -> tuple[int, ...]:
    """Shape of the model's observation: one step's (`step_obs_shape`) at ``obs_history`` 1;
    with k > 1 steps ``(5 k,)`` objects, ``(128 k,)`` ram, ``(k, H, W)`` pixels."""
    k, step = config.obs_history, step_obs_shape(config)
    if k == 1:
        return step
    return (k, *step) if config.obs_mode == "pixels" else (k * step[0],)


# ------------------------------------------------------------------------ observations
_OBJECT_BYTES = np.array([RAM_BALL_X, RAM_BALL_Y, RAM_AGENT_Y, RAM_OPPONENT_Y])
_OBJECT_LO = np.array([BALL_X_RANGE[0], BALL_Y_RANGE[0], PADDLE_Y_RANGE[0], PADDLE_Y_RANGE[0]], np.float32)
_OBJECT_SPAN = np.array([BALL_X_RANGE[1], BALL_Y_RANGE[1], PADDLE_Y_RANGE[1], PADDLE_Y_RANGE[1]], np.float32) - _OBJECT_LO


def objects_from_ram(ram: np.ndarray) -> np.ndarray:
    """RAM ``[..., 128]`` uint8 -> object features ``[..., 5]`` float32 in [0, 1].

    Features: ball x, ball y, agent paddle y, opponent paddle y, no-ball flag. While no
    ball is in play (ball x = 205) ball x and y are 0 and the flag is 1.
    """
    ram = np.asarray(ram)
    out = np.empty(ram.shape[:-1] + (5,), np.float32)
    np.divide(ram[..., _OBJECT_BYTES] - _OBJECT_LO, _OBJECT_SPAN, out=out[..., :4])
    np.minimum(np.maximum(out[..., :4], 0.0, out=out[..., :4]), 1.0, out=out[..., :4])
    no_ball = ram[..., RAM_BALL_X] >= NO_BALL_X
    out[..., 4] = no_ball
    out[..., :2] *= ~no_ball[..., None]
    return out


def ram_features(ram: np.ndarray) -> np.ndarray:
    """RAM ``[..., 128]`` uint8 -> ``[..., 128]`` float32 in [0, 1] (each byte / 255): ram mode."""
    return np.asarray(ram).astype(np.float32) / np.float32(255.0)


def _area_matrix(src: int, dst: int) -> np.ndarray:
    """``[dst, src]`` row-stochastic matrix averaging source pixels over each target cell."""
    edges = np.linspace(0.0, src, dst + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(src)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


class FrameResizer:
    """Grey screen ``[210, 160]`` uint8 -> ``frame_size`` float32 in [0, 1] (area average).

    Two small matmuls with precomputed area-weight matrices: exact area resampling for any
    target size, no image library needed.
    """

    def __init__(self, frame_size: tuple[int, int], screen_shape: tuple[int, int] = (210, 160)):
        self.rows = _area_matrix(screen_shape[0], frame_size[0]) / 255.0
        self.cols = _area_matrix(screen_shape[1], frame_size[1]).T.copy()

    def __call__(self, screen: np.ndarray) -> np.ndarray:
        return np.clip(self.rows @ screen.astype(np.float32) @ self.cols, 0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _resizer(frame_size: tuple[int, int]) -> FrameResizer:
    return FrameResizer(frame_size)


# ------------------------------------------------------------------------ environments
class AtariPong:
    """The configured game as ``tnd.envs.make("atari_pong")`` returns it (its params: the config).

    Host-side: the games are played by `PongBatch` emulators (`tnd.envs.atari_pong.play`);
    this object gives the gymnax-style description a trainer needs.
    """

    def __init__(self, config: AtariPongConfig | None = None):
        self.config = AtariPongConfig() if config is None else config

    @property
    def default_params(self) -> AtariPongConfig:
        return self.config

    @property
    def name(self) -> str:
        return ENV_ID

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params: AtariPongConfig | None = None) -> Discrete:
        return Discrete(NUM_ACTIONS)

    def observation_space(self, params: AtariPongConfig | None = None) -> Box:
        return Box(0.0, 1.0, obs_shape(self.config if params is None else params))


def register() -> None:
    """Registers the ALE environments with gymnasium (idempotent)."""
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)


def make_env(config: AtariPongConfig) -> gymnasium.Env:
    """One ``ALE/Pong-v5`` env with RAM observations, the configured frameskip, stickiness
    and step limit, and the minimal action set (the reduced action mapping is done by
    `PongBatch`, or by indexing `ALE_ACTIONS`)."""
    import gymnasium

    register()
    return gymnasium.make(
        ENV_ID,
        obs_type="ram",
        frameskip=config.frameskip,
        repeat_action_probability=config.repeat_action_probability,
        full_action_space=False,
        max_episode_steps=config.max_steps,
    )


def game_seed(seed: int, game: int) -> int:
    """The environment seed of game ``game`` in a run seeded ``seed`` (stable, batch-free)."""
    return int(np.random.SeedSequence([int(seed), int(game)]).generate_state(1, np.uint32)[0])


class PongBatch:
    """``num_envs`` Pong games stepped together; each row plays its own seeded game.

    ``reset_row(i, seed)`` starts a game in row ``i`` (a random number of NOOP steps in
    [0, noop_max] drawn from ``seed``); ``step(actions, active)`` steps the active rows
    with reduced actions ``[B]`` and returns ``(reward [B] float32, done [B] bool)``. After
    either call ``self.ram`` ``[B, 128]`` uint8 holds each row's RAM and `observations()`
    the model observations ``[B, *obs]``. ``done`` is true when the game ended (21 points)
    or hit ``max_steps``. Each row keeps the history of its game's last ``obs_history``
    step observations; `reset_row` fills it with the new game's first observation.

    Why the rows drive ``ale`` directly and draw sticky actions themselves: reseeding an
    ALE env (``env.reset(seed=...)``) reloads the ROM, ~0.15-0.2 s per game, and ALE offers
    no other way to reseed its RNG (``setInt("random_seed")`` only takes effect in
    ``loadROM``). So each row's emulator is built once with ALE's own stickiness off and
    is restarted with ``reset_game`` (~10 ms); sticky actions are applied here with ALE's
    exact rule — on every emulator frame, with probability ``repeat_action_probability``
    the previously executed action is repeated instead of the new one — drawn from a
    generator seeded by the game's seed. A game is therefore a pure function of its seed
    and its actions, whichever row plays it.
    """

    def __init__(self, config: AtariPongConfig, num_envs: int):
        if num_envs < 1:
            raise AtariConfigError(f"num_envs must be >= 1, got {num_envs}.")
        self.config = config
        self.num_envs = num_envs
        emulator = dataclasses.replace(config, repeat_action_probability=0.0)
        self.envs = [make_env(emulator) for _ in range(num_envs)]
        self._ales = [env.unwrapped.ale for env in self.envs]
        minimal = self._ales[0].getMinimalActionSet()  # ALE Action enums, by minimal index
        self._ale_actions = [minimal[int(a)] for a in ALE_ACTIONS]  # reduced action -> enum
        self._noop = self._ale_actions[0]
        for env in self.envs:
            env.reset(seed=0)  # the ROM is loaded once here; games restart with reset_game
        self.ram = np.zeros((num_envs, 128), np.uint8)
        self._rngs = [np.random.default_rng(0) for _ in range(num_envs)]
        self._previous = [self._noop] * num_envs  # last executed ALE action per row (sticky)
        self._steps = np.zeros(num_envs, np.int64)
        self._resize = _resizer(config.frame_size) if config.obs_mode == "pixels" else None
        # [B, k, *step_obs]: each row's last k step observations, oldest first
        self._history = np.zeros((num_envs, config.obs_history, *step_obs_shape(config)), np.float32)

    def _observe(self, i: int, *, new_game: bool = False) -> None:
        """Reads row ``i``'s RAM and appends its step observation to the row's history (a
        new game's first observation fills the whole history)."""
        ale = self._ales[i]
        ale.getRAM(self.ram[i])
        mode = self.config.obs_mode
        if mode == "pixels":
            step = self._resize(ale.getScreenGrayscale())
        else:
            step = ram_features(self.ram[i]) if mode == "ram" else objects_from_ram(self.ram[i])
        history = self._history[i]
        if new_game:
            history[:] = step
        else:
            history[:-1] = history[1:]
            history[-1] = step

    def _act(self, i: int, action: int) -> tuple[int, bool]:
        """One agent step of row ``i``: ``frameskip`` frames with sticky actions."""
        ale, p, previous = self._ales[i], self.config.repeat_action_probability, self._previous[i]
        reward = 0
        if p > 0.0:
            for u in self._rngs[i].random(self.config.frameskip):
                if u >= p:
                    previous = action
                reward += ale.act(previous)
        else:
            previous = action
            reward = self._play_frames(ale, action)
        self._previous[i] = previous
        return reward, ale.game_over()

    def reset_row(self, i: int, seed: int) -> None:
        self._ales[i].reset_game()
        self._rngs[i] = np.random.default_rng([int(seed), 11])
        self._previous[i] = self._noop
        self._steps[i] = 0
        noops = int(np.random.default_rng([int(seed), 7]).integers(0, self.config.noop_max + 1))
        for _ in range(noops):  # no-op steps do not count toward max_steps
            self._act(i, self._noop)
        self._observe(i, new_game=True)

    def step(self, actions: np.ndarray, active: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        table = self._ale_actions
        ale_actions = [table[a] for a in np.asarray(actions).tolist()]
        rows = range(self.num_envs) if active is None else np.flatnonzero(active).tolist()
        reward = np.zeros(self.num_envs, np.float32)
        done = np.zeros(self.num_envs, bool)
        for i in rows:
            reward[i], done[i] = self._act(i, ale_actions[i])
            self._observe(i)
        self._steps[rows] += 1
        done[rows] |= self._steps[rows] >= self.config.max_steps
        return reward, done

    # -------------------------------------------------------------- planning on a row
    def snapshot(self, i: int):
        """The emulator state of row ``i`` (``ale.cloneState``), for `restore` after planning."""
        return self._ales[i].cloneState()

    def restore(self, i: int, state) -> None:
        """Puts row ``i``'s emulator back to a `snapshot` (the row's RAM view is unchanged)."""
        self._ales[i].restoreState(state)

    def plan_step(self, i: int, action: int, ram: np.ndarray) -> int:
        """One agent step of row ``i`` for planning: ``frameskip`` frames of ``action`` with
        no sticky draw and no step count; writes the new RAM into ``ram`` ``[128]`` and
        returns the reward. Only between `snapshot` and `restore`."""
        ale = self._ales[i]
        reward = self._play_frames(ale, self._ale_actions[int(action)])
        ale.getRAM(ram)
        return reward

    def _play_frames(self, ale, action) -> int:
        """``frameskip`` emulator frames of one ALE action; their summed reward."""
        return sum(ale.act(action) for _ in range(self.config.frameskip))

    def observations(self) -> np.ndarray:
        """``[B, *obs_shape(config)]`` float32 in [0, 1]: every row's last ``obs_history``
        step observations (oldest first), as of the row's last `reset_row` or `step`."""
        return self._history.reshape(self.num_envs, *obs_shape(self.config)).copy()

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def __enter__(self) -> "PongBatch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
