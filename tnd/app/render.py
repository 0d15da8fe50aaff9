"""A trained run folder's agent, playing, as an animation (what ``tnd-render`` does).

    result = render_run("multirun/pong_table/pong/default/model=lstm,seed=0", "agent.gif", RenderOptions(steps=300))
    print(describe(result))

`render_run` restores the folder's latest checkpoint (`restore_model`), has the run's env
play and draw its own evaluation games (`EnvDefinition.draw_games`), puts the headers of
`tnd.evaluation.render` above the frames and writes the file.
"""

from __future__ import annotations

from pathlib import Path

from tnd.app.experiment import eval_env_config
from tnd.app.restore import restore_model
from tnd.envs import env_names, get_env
from tnd.envs.pong.render import check_animation_path, write_animation
from tnd.evaluation.render import (
    DEFAULT_FILE, Recording, RenderError, RenderOptions, RenderResult, annotate, counts_text, overlay_lines, upscale,
)


def default_output(run_dir: str | Path) -> Path:
    """``<run_dir>/agent.gif``: the animation stays with the run it shows."""
    return Path(run_dir) / DEFAULT_FILE


def record_run(model, spec, options: RenderOptions, seed: int) -> Recording:
    """The run's env (with its evaluation overrides), played by ``model`` and drawn by the env
    (`EnvDefinition.draw_games`) as `options` say."""
    env = get_env(spec.env.name)
    if env.draw_games is None:
        drawable = [name for name in env_names() if get_env(name).draw_games is not None]
        raise RenderError(f"Cannot render env '{env.name}': it does not draw its games (EnvDefinition.draw_games); "
                          f"envs that do: {', '.join(drawable)}.")
    config = eval_env_config(env, spec.env.options, spec.eval)
    return env.draw_games(model, config, games=options.games, seed=seed, steps=options.steps, progress=options.progress)


def render_run(run_dir: str | Path, out: str | Path | None = None, options: RenderOptions | None = None) -> RenderResult:
    """Restores a ``tnd-train`` run folder's latest checkpoint, plays, draws and writes the animation.

    Every input check (sizes, output format, folder) runs before anything is restored or
    played. ``out`` defaults to `default_output`.
    """
    options = options or RenderOptions()
    options.validate()
    run_dir = Path(run_dir)
    out = default_output(run_dir) if out is None else Path(out)
    check_animation_path(out)
    if not run_dir.is_dir():
        raise RenderError(f"Run folder {run_dir} does not exist (expected a tnd-train run folder).")
    model, spec, meta = restore_model(run_dir, plugins=options.plugins)
    model.eval()  # as in evaluation: deterministic mode (dropout off)
    seed = int(spec.eval.seed if options.seed is None else options.seed)
    recording = record_run(model, spec, options, seed)
    lines = overlay_lines(recording, spec.model.name)
    frames = upscale(annotate(recording.frames, lines, progress=options.progress), options.scale)
    path = write_animation(frames, out, fps=int(options.fps or recording.fps), progress=options.progress)
    return RenderResult(path=path, shape=tuple(frames.shape), model=spec.model.name,
                        checkpoint_step=int(meta["step"]), seed=seed, recording=recording, lines=lines)


def describe(result: RenderResult) -> str:
    """One line for the terminal: what was written and the counts it ends on."""
    rec = result.recording
    frames, height, width = result.shape[:3]
    return (f"wrote {result.path}: {frames} frames of {width}x{height}, {result.model} at checkpoint step "
            f"{result.checkpoint_step}, {len(rec.seeds)} game(s) of eval seed {result.seed}; "
            f"{counts_text(rec.env, rec.final_counts())}")
