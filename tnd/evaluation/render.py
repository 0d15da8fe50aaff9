"""Animations of a trained run's greedy policy playing, with the running counts on every frame.

    recording = get_env("pong").draw_games(model, config, games=1, seed=7, steps=300)
    frames = annotate(recording.frames, overlay_lines(recording, "lstm"))

(`tnd.app.render.render_run` does it for a run folder.) Flow: a restored model -> the games of the
run's evaluation, played by the evaluation code itself and drawn by the env
(`tnd.envs.registry.EnvDefinition.draw_games`: a `Recording`) -> a text header above every
frame (`overlay_lines`, `annotate`), its counts line in the env's words
(`EnvDefinition.describe_counts`) -> integer upscaling (`upscale`) -> `write_animation`
(``.gif``; ``.mp4`` with imageio-ffmpeg).

Frame ``t`` of a game shows the screen after step ``t`` (1-based) and the counts of steps
``1..t``: the running sums of the events the rollout counts in its tallies (never
recomputed from the pictures), so the last frame of a game shows that game's tally. Game
``g`` is game ``g`` of an evaluation with seed ``seed`` (``tnd-eval eval.seed=<seed>``),
played for ``steps`` steps (the env's step cap is set to ``steps``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from tnd.envs.atari_pong.recording import FRAMES_PER_SECOND as ATARI_FRAMES_PER_SECOND
from tnd.envs.pong.recording import FPS as PONG_FPS
from tnd.envs.pong.recording import PIXELS_PER_UNIT as PONG_PIXELS_PER_UNIT
from tnd.envs.pong.render import BACKGROUND, PROGRESS_DELAY
from tnd.envs.recording import Recording, counts_in_words
from tnd.envs.registry import find_env
from tnd.training.config import check_seed

__all__ = [
    "ATARI_FRAMES_PER_SECOND", "DEFAULT_FILE", "DEFAULT_STEPS", "PONG_FPS", "PONG_PIXELS_PER_UNIT",
    "Recording", "RenderError", "RenderOptions", "RenderResult", "annotate", "counts_text", "header",
    "overlay_lines", "upscale",
]

DEFAULT_STEPS = 300
DEFAULT_FILE = "agent.gif"  # inside the run folder

TEXT_COLOUR = (236, 236, 236)
HEADER_PADDING = 3  # pixels around and between the header's text lines
FONT_PROBE = "Ag"  # text whose bounding box gives the line height


class RenderError(ValueError):
    """Bad rendering input: a missing run folder, an env that cannot be drawn, a non-positive size."""


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
class RenderResult:
    """What `render_run` wrote and showed: the path, the frame shape, the recording and its text."""

    path: str
    shape: tuple[int, ...]  # [N, H, W, 3] of the written frames
    model: str
    checkpoint_step: int
    seed: int  # the evaluation seed the games come from
    recording: Recording
    lines: list[tuple[str, ...]]  # the header text of every frame


# ----------------------------------------------------------------------------- overlay
def counts_text(env: str, counts: Mapping[str, int]) -> str:
    """The counts line of env ``env``'s frames (`EnvDefinition.describe_counts`; name-value pairs
    for an env that is not registered)."""
    definition = find_env(env)
    return (definition.describe_counts if definition is not None else counts_in_words)(counts)


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
