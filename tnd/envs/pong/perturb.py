"""Perturbed single-player Pong: the same game, seen and controlled through perturbations.

`PerturbedPong` wraps `SinglePlayerPong` (gymnax's wrapper pattern: the inner state is
kept whole, the wrapper adds its own fields), so the physics, the serves and the counted
events are exactly the unperturbed game's. Each perturbation is a `PongConfig` option;
`env_for(config)` returns ``(env, params)``: the plain game when all are off (unperturbed
play compiles and draws exactly as before), else `PerturbedPong` with `PerturbedParams`.
The amounts are traced leaves of the params, as the game's own values are, so one compiled
program plays every perturbation (only the number of delay slots is static).

* ``obs_noise`` = sigma: Gaussian noise (court units) on the observed positions: ball x and
  y while a ball is in play, and the paddle. The no-ball flag and the opponent slot are exact.
* ``action_delay`` = d: the action chosen at step t executes at step t + d (STAY before).
* ``repeat_action_probability`` = p: sticky actions, as ALE's: with probability p the
  previously executed action executes again instead.
* ``occlusion_steps`` = k with ``occlusion_rate`` = q: on each step after one on which the
  ball was seen in play, an occlusion starts with probability q; the ball's observed x and y
  then stay at their last seen values (the no-ball flag stays 0: the agent is not told) for
  exactly k observations, or until the round ends. Runs of hidden observations are
  separated by at least one visible one.

The wrapper's randomness is folded from the step's key (``fold_in``), so the game's own
draws (the serves) are those of the unperturbed game with the same keys.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from tnd.envs.pong.env import STAY, PongConfig, PongParams, PongState, SinglePlayerPong, to_params
from tnd.envs.pong.expert import expert_action

NOISE_STREAM, STICKY_STREAM, OCCLUSION_STREAM = 1, 2, 3  # fold_in tags of the wrapper's draws


@struct.dataclass
class PerturbedParams:
    """The game's params and the perturbations' amounts (traced: one compile serves all)."""

    game: PongParams
    obs_noise: jax.Array  # float32 sigma
    action_delay: jax.Array  # int32 steps, at most the env's delay_slots
    repeat_action_probability: jax.Array  # float32
    occlusion_steps: jax.Array  # int32 k (0: never)
    occlusion_rate: jax.Array  # float32


def is_perturbed(config: PongConfig) -> bool:
    """Whether any perturbation changes play (``occlusion_rate`` alone does not)."""
    return bool(config.obs_noise or config.action_delay or config.repeat_action_probability
                or config.occlusion_steps)


def perturbed_params(config: PongConfig) -> PerturbedParams:
    f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
    return PerturbedParams(
        game=to_params(config), obs_noise=f32(config.obs_noise), action_delay=jnp.int32(config.action_delay),
        repeat_action_probability=f32(config.repeat_action_probability),
        occlusion_steps=jnp.int32(config.occlusion_steps), occlusion_rate=f32(config.occlusion_rate),
    )


@struct.dataclass
class PerturbedState:
    """The game's state and the perturbations' memory (scalars per game, ``chosen`` ``[delay_slots]``)."""

    game: PongState
    chosen: jax.Array  # int32: the last delay_slots chosen actions, oldest first (STAY before the game)
    executed: jax.Array  # int32: the action executed last (sticky actions)
    hidden_left: jax.Array  # int32: hidden observations still to come in this occlusion
    seen: jax.Array  # bool: the last observation showed the ball in play
    seen_ball: jax.Array  # float32 [2]: the ball's last seen observed (x, y)


class PerturbedPong:
    """`SinglePlayerPong` seen and controlled through perturbations (see module docstring).

    ``delay_slots``: the longest action delay its params may ask for (static: the size of
    the chosen-action memory).
    """

    def __init__(self, delay_slots: int = 1, env: SinglePlayerPong | None = None):
        self.delay_slots = max(1, int(delay_slots))
        self.env = SinglePlayerPong() if env is None else env

    def __hash__(self) -> int:
        return hash((type(self), self.delay_slots, self.env))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.delay_slots, other.env) == (self.delay_slots, self.env)

    # ---------------------------------------------------------------- gymnax interface
    @property
    def default_params(self) -> PerturbedParams:
        return perturbed_params(self.env.config)

    @functools.partial(jax.jit, static_argnums=(0,))
    def reset(self, key: jax.Array, params: PerturbedParams | None = None) -> tuple[jax.Array, PerturbedState]:
        return self.reset_env(key, self.default_params if params is None else params)

    @functools.partial(jax.jit, static_argnums=(0,))
    def step(self, key: jax.Array, state: PerturbedState, action: jax.Array, params: PerturbedParams | None = None):
        """One step with auto-reset (as `SinglePlayerPong.step`)."""
        params = self.default_params if params is None else params
        obs_st, state_st, reward, done, info = self.step_env(key, state, action, params)
        obs_re, state_re = self.reset_env(key, params)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_re, state_st)
        return jnp.where(done, obs_re, obs_st), state, reward, done, info

    def reset_env(self, key: jax.Array, params: PerturbedParams) -> tuple[jax.Array, PerturbedState]:
        obs, game = self.env.reset_env(key, params.game)
        state = PerturbedState(
            game=game,
            chosen=jnp.full((self.delay_slots,), STAY, jnp.int32),
            executed=jnp.int32(STAY),
            hidden_left=jnp.int32(0),
            seen=game.serve_timer == 0,
            seen_ball=obs[:2],
        )
        return self._noisy(key, obs, params), state

    def step_env(self, key: jax.Array, state: PerturbedState, action: jax.Array, params: PerturbedParams):
        """Delay, then sticky actions, then the game's step, then occlusion and noise on what is seen."""
        action = jnp.asarray(action, jnp.int32)
        delay = jnp.clip(params.action_delay, 0, self.delay_slots)
        due = jnp.where(delay == 0, action, state.chosen[self.delay_slots - jnp.maximum(delay, 1)])
        chosen = jnp.concatenate([state.chosen[1:], action[None]])
        sticky = jax.random.uniform(jax.random.fold_in(key, STICKY_STREAM)) < params.repeat_action_probability
        executed = jnp.where(sticky, state.executed, due)
        obs, game, reward, done, info = self.env.step_env(key, state.game, executed, params.game)
        obs, hidden_left, seen, seen_ball = self._occlude(key, state, game, obs, params)
        state = PerturbedState(game=game, chosen=chosen, executed=executed, hidden_left=hidden_left,
                               seen=seen, seen_ball=seen_ball)
        return self._noisy(key, obs, params), state, reward, done, info

    def _occlude(self, key: jax.Array, state: PerturbedState, game: PongState, obs: jax.Array,
                 params: PerturbedParams):
        """The observation with the ball held at its last seen place while an occlusion lasts."""
        in_play = game.serve_timer == 0
        draw = jax.random.uniform(jax.random.fold_in(key, OCCLUSION_STREAM))
        starts = state.seen & (params.occlusion_steps > 0) & (draw < params.occlusion_rate)
        hidden = in_play & ((state.hidden_left > 0) | starts)
        hidden_left = jnp.where(~in_play, 0, jnp.where(state.hidden_left > 0, state.hidden_left - 1,
                                                       jnp.where(starts, params.occlusion_steps - 1, 0)))
        ball = jnp.where(hidden, state.seen_ball, obs[:2])
        return obs.at[:2].set(ball), hidden_left.astype(jnp.int32), in_play & ~hidden, ball

    def _noisy(self, key: jax.Array, obs: jax.Array, params: PerturbedParams) -> jax.Array:
        """Gaussian noise on the positions the agent sees (ball while in play, paddle)."""
        in_play = obs[4] == 0
        mask = jnp.stack([in_play, in_play, jnp.bool_(True), jnp.bool_(False), jnp.bool_(False)])
        noise = params.obs_noise * jax.random.normal(jax.random.fold_in(key, NOISE_STREAM), obs.shape, obs.dtype)
        return obs + jnp.where(mask, noise, 0.0)

    @property
    def name(self) -> str:
        return "PerturbedSinglePlayerPong-v0"

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def action_space(self, params: PerturbedParams | None = None):
        return self.env.action_space()

    def observation_space(self, params: PerturbedParams | None = None):
        return self.env.observation_space()


def env_for(config: PongConfig, game: SinglePlayerPong | None = None) -> tuple[SinglePlayerPong | PerturbedPong, Any]:
    """``(env, params)`` that play ``config``: ``game`` (default: the stateless
    `SinglePlayerPong()`, whose values all come from the params) and `to_params`, or
    ``game`` behind its perturbations and `perturbed_params`."""
    game = SinglePlayerPong() if game is None else game
    if not is_perturbed(config):
        return game, to_params(config)
    return PerturbedPong(config.action_delay, game), perturbed_params(config)


def game_states(states):
    """The game's own states of a trajectory played on `env_for` (what renderers and experts read)."""
    return states.game if isinstance(states, PerturbedState) else states


def _expert_through_perturbations(state: PerturbedState, params: PerturbedParams, *args) -> jax.Array:
    """The analytic expert on the game behind the perturbations (it reads the true state)."""
    return expert_action(state.game, params.game, *args)


def game_expert(env: SinglePlayerPong | PerturbedPong):
    """The expert policy for ``env``'s states: `expert_action`, reading through a `PerturbedPong`."""
    return _expert_through_perturbations if isinstance(env, PerturbedPong) else expert_action
