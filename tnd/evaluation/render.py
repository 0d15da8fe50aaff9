"""Animations of a trained run's greedy policy playing, with the running counts on every frame.

    recording = record_pong(model, config, games=1, seed=7, steps=300)
    frames = annotate(recording.frames, overlay_lines(recording, "lstm"))

(`tnd.app.render.render_run` does it for a run folder.) Flow: a restored model -> the games of the
run's evaluation, played by the evaluation code itself and recorded (`record_pong`,
`record_atari`) -> a text header above every frame (`overlay_lines`, `annotate`) ->
integer upscaling (`upscale`) -> `write_animation` (``.gif``; ``.mp4`` with imageio-ffmpeg).

* ``env=pong``: `tnd.envs.pong.record_model` plays the games in one jitted rollout
  (`tnd.envs.rollout.rollout`) and returns their trajectory, the state after every step
  included; `tnd.envs.pong.render.render_frames` draws them (``PONG_PIXELS_PER_UNIT``
  pixels per court unit).
* ``env=atari_pong``: `tnd.envs.atari_pong.evaluate_model` plays them, one game after
  another, and the ``on_step`` hook of its host rollout grabs ALE's RGB screen ``[210, 160, 3]``.

Frame ``t`` of a game shows the screen after step ``t`` (1-based) and the counts of steps
``1..t``: the running sums of the catch / miss / point events the rollout counts in its
tallies (never recomputed from the pictures), so the last frame of a game shows that game's
tally. Game ``g`` is game ``g`` of an evaluation with seed ``seed`` (``tnd-eval
eval.seed=<seed>``), played for ``steps`` steps (the env's step cap is set to ``steps``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from tnd.envs.pong.render import BACKGROUND, PROGRESS_DELAY, render_frames
from tnd.training.config import check_seed

ENVS = ("pong", "atari_pong")
COUNT_FIELDS = ("catches", "misses", "points_won", "points_lost")  # running counts drawn on the frames
PONG_PIXELS_PER_UNIT = 160  # native Pong frame: 173 x 173 pixels (28 header characters wide)
DEFAULT_STEPS = 300
PONG_FPS = 20  # a rally (paddle -> wall -> paddle, ~16 steps) in under a second
ATARI_FRAMES_PER_SECOND = 60  # the emulator's rate: Atari animations play in real time (60 / frameskip)
DEFAULT_FILE = "agent.gif"  # inside the run folder

TEXT_COLOUR = (236, 236, 236)
HEADER_PADDING = 3  # pixels around and between the header's text lines
FONT_PROBE = "Ag"  # text whose bounding box gives the line height


class RenderError(ValueError):
    """Bad rendering input: a missing run folder, an unsupported env, a non-positive size."""


@dataclasses.dataclass(frozen=True)
class RenderOptions:
    """What to play and how to draw it (``None``: the run's eval seed, the env's frame rate)."""

    steps: int = DEFAULT_STEPS  # agent steps per game = frames per game
    games: int = 1
    seed: int | None = None  # evaluation seed; None: the run's eval.seed (its held-out test games)
    fps: int | None = None
    scale: int = 1  # integer magnification of the native frame (header included)
    progress: bool = True
    plugins: tuple[str, ...] = ()  # plugin modules a run trained with plugins=[...] needs (the user's consent)

    def validate(self) -> None:
        """Every size positive and the seed a seed (one readable error otherwise)."""
        for name in ("steps", "games", "fps", "scale"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise RenderError(f"{name} must be a positive integer, got {value}.")
        if self.seed is not None:
            check_seed("--seed", self.seed)


@dataclasses.dataclass(frozen=True)
class Recording:
    """Played games as frames, games one after another (``N`` frames in all).

    ``frames`` ``[N, H, W, 3]`` uint8 (no overlay); ``game`` ``[N]`` 0-based game index;
    ``step`` ``[N]`` the step each frame shows, 1-based within its game; ``counts[field]``
    ``[N]`` that game's running count up to and including that step (fields:
    `COUNT_FIELDS`); ``seeds`` each game's env seed; ``fps`` the env's natural frame rate.
    """

    env: str
    frames: np.ndarray
    game: np.ndarray
    step: np.ndarray
    counts: dict[str, np.ndarray]
    seeds: tuple[int, ...]
    fps: int

    def final_counts(self) -> dict[str, int]:
        """Each count summed over the games' last frames (= the games' tallies over the frames shown)."""
        last = np.flatnonzero(np.diff(self.game, append=-1) != 0)
        return {k: int(np.asarray(v)[last].sum()) for k, v in self.counts.items()}


@dataclasses.dataclass(frozen=True)
class RenderResult:
    """What `render_run` wrote and showed: the path, the frame shape, the recording and its text."""

    path: str
    shape: tuple[int, ...]  # [N, H, W, 3] of the written frames
    model: str
    checkpoint_step: int
    seed: int  # the evaluation seed the games come from
    recording: Recording
    lines: list[tuple[str, ...]]  # the header text of every frame


# ----------------------------------------------------------------------------- recording
def running_counts(events: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-step events ``[G, T]`` -> running counts within each game, flattened game-major ``[G * T]``."""
    return {k: np.cumsum(np.asarray(events[k], np.int64), axis=1).reshape(-1) for k in COUNT_FIELDS}


def record_pong(model, config, *, games: int, seed: int, steps: int, pixels_per_unit: int = PONG_PIXELS_PER_UNIT) -> Recording:
    """``games`` evaluation games of single-player Pong (`PongConfig`), ``steps`` steps each."""
    import jax

    from tnd.envs.pong import EVAL_STREAM, game_seeds, record_model, to_params

    config = dataclasses.replace(config, max_steps=int(steps))
    _, trajectory = record_model(model, config, num_games=games, seed=seed)
    states = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), trajectory.states)  # [G, T] -> [G * T]
    return Recording(
        env="pong",
        frames=render_frames(states, to_params(config), pixels_per_unit),
        game=np.repeat(np.arange(games), steps),
        step=np.tile(np.arange(1, steps + 1), games),
        counts=running_counts(trajectory.events),
        seeds=tuple(int(s) for s in game_seeds(seed, games, EVAL_STREAM)),
        fps=PONG_FPS,
    )


def record_atari(model, config, *, games: int, seed: int, steps: int, progress: bool = False) -> Recording:
    """``games`` evaluation games of Atari Pong (`AtariPongConfig`), up to ``steps`` steps each.

    Played by `tnd.envs.atari_pong.evaluate_model` on one emulator (one game after another);
    its ``on_step`` hook keeps the RGB screen and the counted events of every step. A game
    that ends (21 points) before ``steps`` has fewer frames.
    """
    from tnd.envs.atari_pong import evaluate_model, game_seed

    config = dataclasses.replace(config, max_steps=int(steps))
    screens: list[list[np.ndarray]] = [[] for _ in range(games)]
    events: list[dict[str, list[int]]] = [{k: [] for k in COUNT_FIELDS} for _ in range(games)]
    bar = tqdm(total=games * steps, desc="atari play", unit="step", disable=not progress, delay=PROGRESS_DELAY)

    def grab(batch, stepped, game_of_row, reward, step_events):
        for row in np.flatnonzero(stepped):
            g = int(game_of_row[row])
            screens[g].append(batch.envs[row].unwrapped.ale.getScreenRGB())
            for key in COUNT_FIELDS:
                events[g][key].append(int(step_events[key][row]))
        bar.update(int(stepped.sum()))

    try:
        evaluate_model(model, config, num_games=games, seed=seed, num_envs=1, progress=False, on_step=grab)
    finally:
        bar.close()
    lengths = [len(s) for s in screens]
    return Recording(
        env="atari_pong",
        frames=np.concatenate([np.stack(s) for s in screens]).astype(np.uint8),
        game=np.repeat(np.arange(games), lengths),
        step=np.concatenate([np.arange(1, n + 1) for n in lengths]),
        counts={k: np.concatenate([np.cumsum(e[k], dtype=np.int64) for e in events]) for k in COUNT_FIELDS},
        seeds=tuple(game_seed(seed, g) for g in range(games)),
        fps=max(1, round(ATARI_FRAMES_PER_SECOND / config.frameskip)),
    )


# ----------------------------------------------------------------------------- overlay
def counts_text(env: str, counts: dict[str, int]) -> str:
    """The counts line: catches and misses (Pong); catches and score = won - lost (Atari)."""
    if env == "atari_pong":
        won, lost = counts["points_won"], counts["points_lost"]
        return f"catches {counts['catches']}  score {won - lost:+d} ({won}-{lost})"
    return f"catches {counts['catches']}  misses {counts['misses']}"


def overlay_lines(recording: Recording, label: str) -> list[tuple[str, ...]]:
    """The header text of every frame: ``(label  step t, [game g/G,] counts line)``.

    The game line appears only when several games are shown (every frame then has it).
    """
    games = int(recording.game.max()) + 1 if len(recording.game) else 0
    lines = []
    for i in range(len(recording.step)):
        game = (f"game {recording.game[i] + 1}/{games}",) if games > 1 else ()
        counts = {k: int(v[i]) for k, v in recording.counts.items()}
        lines.append((f"{label}  step {recording.step[i]}", *game, counts_text(recording.env, counts)))
    return lines


@functools.lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in bitmap font (6 x 11 pixels a character: crisp when upscaled, no new colours)."""
    return getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)()


def header(lines: Sequence[str], width: int) -> np.ndarray:
    """A strip ``[h, width, 3]`` uint8 with ``lines`` of text, one under the other."""
    font = _font()
    line_height = font.getbbox(FONT_PROBE)[3] + HEADER_PADDING
    image = Image.new("RGB", (width, HEADER_PADDING + line_height * len(lines)), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((HEADER_PADDING, HEADER_PADDING + i * line_height), line, fill=TEXT_COLOUR, font=font)
    return np.asarray(image)


def annotate(frames: np.ndarray, lines: Sequence[Sequence[str]], *, progress: bool = False, desc: str = "render") -> np.ndarray:
    """Frames ``[N, H, W, 3]`` -> ``[N, H + h, W, 3]``: each frame under a header with its own lines."""
    if len(frames) != len(lines):
        raise RenderError(f"{len(frames)} frames but {len(lines)} header texts.")
    out = []
    bar = tqdm(frames, desc=desc, unit="frame", disable=not progress, delay=PROGRESS_DELAY)
    for frame, text in zip(bar, lines, strict=True):
        out.append(np.concatenate([header(text, frame.shape[1]), frame], axis=0))
    return np.stack(out)


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour integer magnification ``[N, H, W, C]`` -> ``[N, sH, sW, C]`` (crisp pixels, text included)."""
    scale = int(scale)
    return frames if scale == 1 else np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2)
