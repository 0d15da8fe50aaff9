"""DAgger after behavior cloning (Ross, Gordon & Bagnell 2011), one run folder, resumable.

    tnd-train model=lstm dagger.rounds=3 dagger.games_per_round=8 dagger.steps_per_round=500

Round 0 trains on the expert data (``train.steps`` steps). Round ``r >= 1``: the student
plays ``dagger.games_per_round`` games, the executed action being the expert's with
probability ``beta_r`` (`beta_for_round`, imitation's LinearBetaSchedule) and its own
otherwise; the expert labels every visited state (the env's ``collect_mixed``); the games
join the expert data and every earlier round's, and the student trains on the whole for
``dagger.steps_per_round`` more steps, continuing its parameters and optimizer state. The
learning-rate schedule spans all rounds (``train.steps + rounds * steps_per_round`` steps),
so round 0 of a DAgger run is not plain behavior cloning's schedule.

On disk, in the run folder (``tnd.data.storage`` format: sha256-checked, written atomically)::

    dagger/round_<r>/games/       round r's new games (r >= 1): the aggregate of round r is
                                  the expert dataset followed by rounds 1..r's games
    dagger/round_<r>/round.json   written when round r's training is done: beta, games,
                                  seed, agreement, steps, the aggregate's size and sha256

An interrupted run resumes between rounds (and inside one, from its latest checkpoint) to
the same data and parameters: stored games are loaded, never played again, and the
parameters at the end of a round are its checkpoint. Each round prints one line (round,
games, beta, the student's agreement with the expert's labels on its own games) and logs it
to ``metrics.jsonl`` (``dagger_*`` keys, at the step the games were played).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from tnd.app.spec import ExperimentError
from tnd.data.storage import load_demonstrations, save_demonstrations
from tnd.data.windows import make_windows
from tnd.envs import EnvDefinition, env_names, get_env
from tnd.envs.demonstrations import Demonstrations, concatenate_demonstrations
from tnd.run_folder import write_json
from tnd.training.config import DaggerSpec, ExperimentSpec, TrainSpec
from tnd.training.logging import MetricsLogger
from tnd.training.loop import SeedRun, TrainResult, train_seeds
from tnd.training.loss import class_weights

log = logging.getLogger(__name__)

FOLDER = "dagger"
ROUND_FILE = "round.json"
GAMES = "games"
SEED_STREAM = 0x0DA66E5  # separates the rounds' game seeds from other uses of the same seeds


class DaggerError(ExperimentError):
    """Invalid DAgger settings, or DAgger asked of an env whose expert cannot label a student's games."""


def validate_dagger(dagger: DaggerSpec, env: EnvDefinition | None = None) -> None:
    """One readable error per invalid ``dagger.*`` setting; with ``env``, also when DAgger is
    on and the env has no ``collect_mixed``."""
    rounds = dagger.rounds
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise DaggerError(f"dagger.rounds must be an integer >= 0 (0: no DAgger), got {rounds!r}.")
    if isinstance(dagger.beta_rampdown_rounds, bool) or not isinstance(dagger.beta_rampdown_rounds, int) \
            or dagger.beta_rampdown_rounds < 0:
        raise DaggerError(f"dagger.beta_rampdown_rounds must be an integer >= 0 (0: the student always acts), "
                          f"got {dagger.beta_rampdown_rounds!r}.")
    if dagger.beta is not None and not (math.isfinite(float(dagger.beta)) and 0.0 <= float(dagger.beta) <= 1.0):
        raise DaggerError(f"dagger.beta must lie in [0, 1] (the expert's share of executed actions) or be null "
                          f"(the linear schedule), got {dagger.beta!r}.")
    if rounds == 0:
        return
    for name in ("games_per_round", "steps_per_round"):
        value = getattr(dagger, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DaggerError(f"dagger.{name} must be a positive integer when dagger.rounds > 0, got {value!r}.")
    if env is not None and env.collect_mixed is None:
        able = [name for name in env_names() if get_env(name).collect_mixed is not None]
        raise DaggerError(f"env '{env.name}' has no collect_mixed (its expert cannot label a student's games), so "
                          f"dagger.rounds must be 0 there. Envs with DAgger: {', '.join(able) or 'none'}.")


def beta_for_round(dagger: DaggerSpec, r: int) -> float:
    """The expert's share of executed actions in round ``r``: ``dagger.beta`` if set, else
    ``min(1, max(0, (rampdown - r) / rampdown))`` (rampdown 0: 0)."""
    if dagger.beta is not None:
        return float(dagger.beta)
    rampdown = int(dagger.beta_rampdown_rounds)
    if rampdown == 0:
        return 0.0
    return float(min(1.0, max(0.0, (rampdown - r) / rampdown)))


def round_seed(spec: ExperimentSpec, r: int) -> int:
    """The collection seed of round ``r``'s games: from ``data.seed``, the run's seed and ``r``."""
    return int(np.random.SeedSequence([int(spec.data.seed), int(spec.seed), int(r), SEED_STREAM])
               .generate_state(1, np.uint32)[0])


def round_end(train: TrainSpec, dagger: DaggerSpec, r: int) -> int:
    """The number of updates done when round ``r`` ends."""
    return int(train.steps) + int(r) * int(dagger.steps_per_round)


def data_digest(demos: Demonstrations) -> str:
    """SHA-256 over a dataset's arrays: equal digests = the same data."""
    digest = hashlib.sha256()
    for name in ("observations", "actions", "taken_actions", "episode_starts", "seeds"):
        digest.update(np.ascontiguousarray(getattr(demos, name)).tobytes())
    return digest.hexdigest()[:16]


def round_dir(run_dir: str | Path, r: int) -> Path:
    """``<run>/dagger/round_<r>``."""
    return Path(run_dir) / FOLDER / f"round_{r}"


def read_round(run_dir: str | Path, r: int) -> dict[str, Any] | None:
    """Round ``r``'s round file (None: the round is not done)."""
    path = round_dir(run_dir, r) / ROUND_FILE
    return json.loads(path.read_text()) if path.is_file() else None


@dataclasses.dataclass
class _Dagger:
    """One seed's DAgger: its member (model trained in place), spec, env and data so far."""

    member: SeedRun
    spec: ExperimentSpec
    env: EnvDefinition
    env_config: Any
    num_actions: int
    run_dir: Path
    parts: list[Demonstrations]

    @property
    def train_spec(self) -> TrainSpec:
        """The train settings with the schedule over every round."""
        return dataclasses.replace(self.spec.train, steps=round_end(self.spec.train, self.spec.dagger,
                                                                    self.spec.dagger.rounds))

    def aggregate(self) -> Demonstrations:
        return concatenate_demonstrations(self.parts, {**self.parts[0].metadata, "dagger_rounds": len(self.parts) - 1})

    def capacity(self, steps: int) -> int | None:
        """Room for the steps the aggregate can reach by the last round (the expert data and
        every round's games at the env's step cap; at least ``steps``, the data so far), so
        that every round trains on arrays of one shape and the train step compiles once.
        None where the env has no step cap: each round's data then has its own shape."""
        cap = self.env.max_game_steps(self.env_config)
        if cap is None:
            return None
        dagger = self.spec.dagger
        return max(int(steps), self.parts[0].num_steps + int(dagger.rounds) * int(dagger.games_per_round) * cap)

    def train_until(self, end: int) -> TrainResult:
        """Trains on the data so far up to ``end`` updates (resuming from the latest checkpoint)."""
        data = self.aggregate()
        windows = make_windows(data, self.spec.train.window, num_actions=self.num_actions,
                               class_balance=self.spec.train.class_balance, capacity=self.capacity(data.num_steps))
        weights = class_weights(data.actions, self.num_actions, self.spec.train.class_balance)
        return train_seeds([self.member], windows, self.train_spec, class_weights=weights, until=end)[0]

    def games(self, r: int, beta: float) -> tuple[Demonstrations, bool]:
        """Round ``r``'s games: loaded when stored, else played by the current model and stored.
        Returns ``(games, played_now)``."""
        path = round_dir(self.run_dir, r) / GAMES
        seed = round_seed(self.spec, r)
        expected = {**self.env.expected_metadata(self.env_config, epsilon=0.0, seed=seed), "beta": beta}
        if path.exists():
            return load_demonstrations(path, num_actions=self.num_actions, expected_metadata=expected), False
        games = self.env.collect_with_student(
            self.env_config, self.member.model, beta=beta, num_episodes=self.spec.dagger.games_per_round,
            seed=seed, num_envs=self.spec.data.num_envs, progress=False,
        )
        save_demonstrations(games, path)
        return load_demonstrations(path, num_actions=self.num_actions, expected_metadata=expected), True

    def finish_round(self, r: int, beta: float, end: int) -> None:
        """Round ``r``'s round file: it is done (trained to ``end`` updates on the aggregate so far)."""
        data = self.aggregate()
        folder = round_dir(self.run_dir, r)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / ROUND_FILE, {
            "round": r, "beta": beta if r else 1.0, "games": self.parts[-1].num_episodes if r else 0,
            "seed": round_seed(self.spec, r) if r else int(self.spec.data.seed),
            "student_agreement": self.parts[-1].metadata.get("student_agreement") if r else None,
            "steps": end, "dataset_steps": data.num_steps, "dataset_episodes": data.num_episodes,
            "data_sha256": data_digest(data),
        })

    def report(self, r: int, beta: float, games: Demonstrations, step: int) -> None:
        """Round ``r``'s line (printed with ``train.progress``, always logged) and its metrics row."""
        agreement = float(games.metadata.get("student_agreement", float("nan")))
        total = sum(part.num_steps for part in self.parts)
        line = (f"dagger round {r}/{self.spec.dagger.rounds}: {games.num_episodes} games played (beta {beta:.2f}), "
                f"student agrees with the expert on {agreement:.1%} of its steps; {total:,} labelled steps in all")
        log.info("%s", line)
        if self.spec.train.progress:
            print(line, flush=True)
        logger = MetricsLogger(self.run_dir, resume_step=step, tensorboard=False)
        try:
            logger.log({"step": step, "dagger_round": r, "dagger_games": games.num_episodes, "dagger_beta": beta,
                        "dagger_agreement": agreement, "dagger_dataset_steps": total})
        finally:
            logger.close()


def run_dagger(member: SeedRun, spec: ExperimentSpec, env: EnvDefinition, env_config, expert_demos: Demonstrations,
               run_dir: str | Path, *, num_actions: int) -> tuple[TrainResult, Demonstrations]:
    """Round 0 (behavior cloning on ``expert_demos``) and ``spec.dagger.rounds`` DAgger rounds
    of one seed, resuming what its run folder holds. Returns the last round's `TrainResult`
    and the aggregated data it trained on."""
    validate_dagger(spec.dagger, env)
    run = _Dagger(member, spec, env, env_config, num_actions, Path(run_dir), [expert_demos])
    rounds = int(spec.dagger.rounds)
    done = {r for r in range(rounds + 1) if read_round(run_dir, r) is not None}
    result: TrainResult | None = None
    for r in range(rounds + 1):
        end = round_end(spec.train, spec.dagger, r)
        beta = beta_for_round(spec.dagger, r)
        if r > 0:  # the model holds round r - 1's parameters here, or round r's games are stored
            games, played = run.games(r, beta)
            run.parts.append(games)
            if played:
                run.report(r, beta, games, end - spec.dagger.steps_per_round)
        if r in done and (round_dir(run_dir, r + 1) / GAMES).exists():
            continue  # done, and the next round's games are stored: its parameters are not needed
        result = run.train_until(end)  # resumes from the latest checkpoint (a done round's: no update)
        if r not in done:
            run.finish_round(r, beta, end)
    return result, run.aggregate()
