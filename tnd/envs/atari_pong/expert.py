"""A scripted Pong expert that reads the emulator RAM and wins against the built-in opponent.

Why it is not "move toward the ball": the agent's paddle is not position-controlled. It
follows a hidden target that moves ~6 px per frame while up/down is held, and on every
second frame the shown paddle closes half of the gap to that target (docs/design.md).
A greedy chaser overshoots and oscillates. So the expert

1. predicts where the ball crosses the paddle line (x ~ 188): linear extrapolation of the
   ball's last displacement, with reflections off the top and bottom walls and, for a ball
   moving away, off the opponent's paddle line (x ~ 68);
2. keeps an estimate of the hidden target (observer): it predicts the shown paddle from
   the action it took, and corrects the target by the prediction error (sticky actions and
   injected perturbations make the executed action uncertain);
3. plans: every step it scores all 27 three-step action sequences on that paddle model
   (after the plan the paddle is assumed to relax to the target) by the distance between
   the predicted paddle and the aim point when the ball arrives, and plays the first
   action of the best sequence (receding horizon).

Where the ball meets the paddle sets the return: the contact offset (``aim_y = crossing y -
offset``) decides the ball's new vertical speed. Offsets from about -4 to 10 px catch
reliably but give returns the built-in opponent always meets (endless rallies: on the
deterministic game, stickiness 0, the expert would win no point); offsets of 12-14 px give
steep returns that often beat the opponent but sometimes miss. Two ways to choose it:

* ``shots=None``: the ``aim_offsets`` are cycled per return (RAM only). With one offset
  this is the **rule** expert (``env.options.expert=rule``, ``rule_offset``): every choice
  it makes depends only on what a student can observe (positions over the last steps, and
  the paddle's history that reveals its hidden target), so its labels are learnable.
* ``shots=ShotSelector(batch)`` (the **lookahead** expert, the default): shot selection by
  lookahead. When a ball starts toward the agent, `ShotSelector` plays each candidate offset
  out on a snapshot of that game's emulator with a one-row copy of this expert, until the
  point ends or the opponent returns the ball, and takes the first candidate (safest first)
  whose return wins the point, else the first that returns it. The emulator is then restored:
  the selection reads the future of the real game, it does not change it. The plan assumes
  its actions execute (no sticky draws), so with sticky actions a chosen winner can still
  fail; it remains a plan that wins on the game as it stands.

The planning and the paddle model are vectorised over the batch of games (NumPy, no per-row
Python); only the lookahead plays row by row.
"""

from __future__ import annotations

import itertools

import numpy as np

from tnd.envs.atari_pong.env import (
    DOWN, NO_BALL_X, RAM_AGENT_Y, RAM_BALL_DX, RAM_BALL_X, RAM_BALL_Y, STAY, UP, PongBatch,
)

PADDLE_LINE_X = 188.0  # ball x where it meets the agent's paddle
OPPONENT_LINE_X = 68.0  # ... and the opponent's
WALL_TOP, WALL_BOTTOM = 44.5, 206.5  # ball y reflection lines (fitted from bounces)
TARGET_STEP = 6.0  # hidden target px per frame while a direction is held
TARGET_RANGE = (12.0, 204.0)  # hidden target limits
PADDLE_RANGE = (38.0, 203.0)  # shown paddle limits
REST_Y = 120.0  # ball y aimed at while no ball is in play

_PLANS = np.array(list(itertools.product((STAY, UP, DOWN), repeat=3)), np.int64)  # [27, 3]
_DIRECTION = np.array([0.0, -1.0, 1.0])  # stay, up (y decreases), down
_EFFORT = 0.01 * (_PLANS != STAY).sum(-1)  # [27] tie-break: fewer key presses

# Candidate contact offsets of the lookahead, safest first (measured on both stickiness
# levels: 8 and 10 catch every ball, 12 and 14 miss more often under sticky actions).
SHOT_OFFSETS = (8.0, 10.0, 4.0, 0.0, 12.0, 14.0)
SHOT_HORIZON = 160  # agent steps a candidate is played out at most
TOWARD_AGENT, AWAY_FROM_AGENT = 255, 1  # RAM_BALL_DX values


def fold(y: np.ndarray, lo: float = WALL_TOP, hi: float = WALL_BOTTOM) -> np.ndarray:
    """Reflects unbounded positions into [lo, hi] (a ball bouncing between two walls)."""
    span = hi - lo
    z = np.mod(y - lo, 2.0 * span)
    return lo + np.where(z > span, 2.0 * span - z, z)


def predict_crossing(x, y, dx, dy) -> tuple[np.ndarray, np.ndarray]:
    """Ball at ``(x, y)`` moving ``(dx, dy)`` px per step -> (steps until it reaches the
    paddle line, its y there). A ball moving away is reflected at the opponent's line."""
    speed = np.maximum(np.abs(dx), 1.0)
    distance = np.where(dx > 0, PADDLE_LINE_X - x, (x - OPPONENT_LINE_X) + (PADDLE_LINE_X - OPPONENT_LINE_X))
    steps = np.maximum(distance, 0.0) / speed
    return steps, fold(y + dy * steps)


def simulate_paddle(paddle, target, actions, frameskip: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The fitted paddle model over one agent step.

    ``paddle``, ``target``: float arrays (any shape, target within ``TARGET_RANGE``),
    ``actions``: int, broadcastable. Each frame the target moves ``TARGET_STEP`` in the
    action's direction (clipped); on every second frame the shown paddle closes half the
    gap to the target clipped to ``PADDLE_RANGE``. Within one step the direction is
    fixed, so the target after ``k`` frames is simply ``clip(target + k * move)``.
    """
    move = TARGET_STEP * _DIRECTION[actions]
    for frame in range(0, frameskip, 2):
        shown = np.minimum(np.maximum(target + (frame + 1) * move, PADDLE_RANGE[0]), PADDLE_RANGE[1])
        paddle = np.floor((paddle + shown) * 0.5)
    target = np.minimum(np.maximum(target + frameskip * move, TARGET_RANGE[0]), TARGET_RANGE[1])
    return paddle, target


def make_expert(config, batch: PongBatch, rows: int) -> ScriptedExpert:
    """The expert ``config.expert`` names, for ``rows`` games of ``batch``: ``lookahead``
    (shots chosen by play-outs on the batch's emulators) or ``rule`` (one contact offset,
    ``config.rule_offset``; observable choices). ``config``: an `AtariPongConfig`."""
    if config.expert == "rule":
        return ScriptedExpert(rows, aim_offsets=(config.rule_offset,), frameskip=config.frameskip)
    return ScriptedExpert(rows, frameskip=config.frameskip, shots=ShotSelector(batch))


class ScriptedExpert:
    """Batched RAM expert. ``act(ram [B, 128], reset [B] bool) -> actions [B]`` int64.

    ``reset[b]`` marks the first step of a new game in row ``b`` (clears its memory). If
    the executed actions differ from the returned labels (perturbations), pass them to
    `executed` before the next `act` so the paddle observer stays right. ``shots``: a
    `ShotSelector` on the `PongBatch` whose rows this expert plays (lookahead shot
    selection); without one the ``aim_offsets`` are cycled per return.
    """

    def __init__(
        self,
        num_envs: int,
        *,
        aim_offsets: tuple[float, ...] = (12.0, 14.0),
        tracking_weight: float = 0.3,
        frameskip: int = 4,
        shots: ShotSelector | None = None,
    ):
        self.num_envs = num_envs
        self.shots = shots
        self.tracking_weight = tracking_weight
        self.aim_offsets = np.asarray(aim_offsets, np.float64)
        self._returns = np.zeros(num_envs, np.int64)
        self.frameskip = frameskip
        self._prev_ball = np.zeros((num_envs, 2))
        self._prev_valid = np.zeros(num_envs, bool)
        self._prev_paddle = np.full(num_envs, 109.0)
        self._target = np.full(num_envs, 110.0)
        self._last_action = np.zeros(num_envs, np.int64)
        self._fresh = np.ones(num_envs, bool)
        self._prev_dx = np.zeros(num_envs)
        self._aim = np.full(num_envs, self.aim_offsets[0])  # offset chosen for each row's incoming ball

    _STATE = ("_prev_ball", "_prev_valid", "_prev_paddle", "_target", "_last_action", "_fresh", "_prev_dx")

    def row_copy(self, row: int, aim_offset: float) -> ScriptedExpert:
        """A one-row expert in row ``row``'s current state that always aims at ``aim_offset``
        (the lookahead plays it on a snapshot of that row's game)."""
        copy = ScriptedExpert(1, aim_offsets=(float(aim_offset),), tracking_weight=self.tracking_weight,
                              frameskip=self.frameskip)
        for name in self._STATE:
            getattr(copy, name)[...] = getattr(self, name)[row:row + 1]
        return copy

    def executed(self, actions: np.ndarray) -> None:
        """The actions actually executed after the last `act` (default: its labels)."""
        self._last_action = np.asarray(actions, np.int64).copy()

    def act(self, ram: np.ndarray, reset: np.ndarray | None = None) -> np.ndarray:
        ram = np.asarray(ram)
        if reset is not None:
            self._fresh |= np.asarray(reset, bool)
        self._returns[self._fresh] = 0  # a new game starts from the first aim (rows are independent)
        self._aim[self._fresh] = self.aim_offsets[0]
        paddle = ram[:, RAM_AGENT_Y].astype(np.float64)
        ball = ram[:, [RAM_BALL_X, RAM_BALL_Y]].astype(np.float64)
        in_play = ram[:, RAM_BALL_X] < NO_BALL_X

        # Observer: correct the hidden-target estimate by the paddle prediction error.
        predicted, target = simulate_paddle(self._prev_paddle, self._target, self._last_action, self.frameskip)
        visible = (paddle > PADDLE_RANGE[0]) & (paddle < PADDLE_RANGE[1])
        target = np.where(visible, target + (paddle - predicted) * 4.0 / 3.0, target)
        target = np.minimum(np.maximum(target, TARGET_RANGE[0]), TARGET_RANGE[1])
        target = np.where(self._fresh, paddle, target)

        # Where and when the ball reaches the paddle line.
        valid = in_play & self._prev_valid & ~self._fresh
        d = ball - self._prev_ball
        steps, cross_y = predict_crossing(ball[:, 0], ball[:, 1], d[:, 0], d[:, 1])
        if self.shots is None:  # cycle the aim at every return
            self._returns += valid & (d[:, 0] < 0) & (self._prev_dx > 0)
            self._aim = self.aim_offsets[self._returns % len(self.aim_offsets)]
        else:  # a ball starting toward the agent: choose its contact offset by lookahead
            for i in np.flatnonzero(valid & (d[:, 0] > 0) & (self._prev_dx <= 0)):
                self._aim[i] = self.shots.choose(i, self)
        self._prev_dx = np.where(valid, d[:, 0], 0.0)
        offset = self._aim
        aim_y = np.where(valid, cross_y, np.where(in_play, ball[:, 1], REST_Y)) - offset
        steps = np.where(valid, steps, 8.0)

        # Plan: score all 27 three-step sequences on the paddle model.
        p, t = paddle[:, None], target[:, None]
        trajectory = []
        for k in range(_PLANS.shape[1]):
            p, t = simulate_paddle(p, t, _PLANS[None, :, k], self.frameskip)
            trajectory.append(p)
        trajectory = np.stack(trajectory, -1)  # [B, 27, 3]
        rest = np.minimum(np.maximum(t, PADDLE_RANGE[0]), PADDLE_RANGE[1])
        relaxed = rest + (p - rest) * 0.25 ** np.maximum(steps - 3.0, 0.0)[:, None]
        k_arrive = np.minimum(np.maximum(np.ceil(steps).astype(np.int64) - 1, 0), 2)
        early = trajectory[np.arange(len(steps)), :, k_arrive]  # [B, 27]
        at_arrival = np.where((steps <= 3.0)[:, None], early, relaxed)
        # Arrival error, plus a tracking term so that moving early beats moving late.
        horizon = (np.arange(1, 4)[None, :] <= np.maximum(np.ceil(steps), 1.0)[:, None])[:, None, :]
        tracking = (np.abs(trajectory - aim_y[:, None, None]) * horizon).sum(-1) / horizon.sum(-1)
        cost = np.abs(at_arrival - aim_y[:, None]) + self.tracking_weight * tracking + _EFFORT
        actions = _PLANS[np.argmin(cost, axis=1), 0]

        self._prev_ball, self._prev_valid = ball, in_play
        self._prev_paddle, self._target = paddle, target
        self._last_action = actions.copy()
        self._fresh[:] = False
        return actions


class ShotSelector:
    """Lookahead shot selection for `ScriptedExpert` on the games of one `PongBatch`.

    ``choose(row, expert)`` is called when a ball starts toward the agent in ``row``, before
    the expert updates its memory from that step's RAM. Each offset of ``candidates`` (in
    order, safest first) is played out from a snapshot of the row's emulator by
    ``expert.row_copy(row, offset)`` for at most ``horizon`` steps, without sticky draws. A
    play-out scores 2 when the agent wins the point, 1 when the opponent returns the ball
    (or time runs out after a catch) and 0 when the agent loses it; the first candidate
    with the best score is returned, and the search stops at the first win. The emulator
    is restored afterwards. ``planned_steps`` counts the emulated agent steps (its cost).
    """

    def __init__(self, batch: PongBatch, candidates: tuple[float, ...] = SHOT_OFFSETS, horizon: int = SHOT_HORIZON):
        if not candidates or horizon < 1:
            raise ValueError(f"ShotSelector needs candidates and horizon >= 1, got {candidates!r}, {horizon}.")
        self.batch = batch
        self.candidates = tuple(float(c) for c in candidates)
        self.horizon = int(horizon)
        self.planned_steps = 0

    def _play_out(self, row: int, expert: ScriptedExpert) -> float:
        ram = self.batch.ram[row:row + 1].copy()
        caught = False
        for _ in range(self.horizon):
            before = ram[0, RAM_BALL_DX]
            reward = self.batch.plan_step(row, int(expert.act(ram)[0]), ram[0])
            self.planned_steps += 1
            if reward:
                return 2.0 if reward > 0 else 0.0
            after = ram[0, RAM_BALL_DX]
            if before == TOWARD_AGENT and after == AWAY_FROM_AGENT:
                caught = True
            elif caught and before == AWAY_FROM_AGENT and after == TOWARD_AGENT:
                return 1.0  # the opponent returned it
        return 1.0 if caught else 0.0

    def choose(self, row: int, expert: ScriptedExpert) -> float:
        state = self.batch.snapshot(row)
        scores = []
        try:
            for offset in self.candidates:
                scores.append(self._play_out(row, expert.row_copy(row, offset)))
                self.batch.restore(row, state)
                if scores[-1] == 2.0:
                    break
        finally:
            self.batch.restore(row, state)
        return self.candidates[int(np.argmax(scores))]
