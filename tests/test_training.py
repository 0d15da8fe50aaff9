"""The trainer: loss weighting, schedule, regularization hook, NaN guard, resume, overfitting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnd.envs.demonstrations import Demonstrations
from tnd.data.windows import gather_windows, make_windows
from tnd.models import build_model
from tnd.models.base import SequenceModel
from tnd.models.encoders import make_io
from tnd.training.checkpoint import Checkpointer
from tnd.training.config import TrainSpec
from tnd.training.logging import read_metrics
from tnd.training.loop import NonFiniteLossError, TrainSpecError, train
from tnd.training.loss import class_weights, cross_entropy
from tnd.training.optimizer import make_schedule


def memory_task(steps=256, episodes=4, seed=0, nan_from=None):
    """Label = bucket of the previous step's first feature: needs one step of memory."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(size=(steps, 5)).astype(np.float32)
    prev = np.roll(obs[:, 0], 1)
    actions = np.where(prev < 0.33, 0, np.where(prev < 0.66, 1, 2)).astype(np.int32)
    if nan_from is not None:
        obs[nan_from:] = np.nan
    starts = np.linspace(0, steps, episodes, endpoint=False).astype(np.int64)
    z = np.zeros(steps)
    return Demonstrations(obs, actions, actions, z.astype(np.float32), z.astype(bool), z.astype(bool),
                          starts, np.arange(episodes), {})


class Tiny(SequenceModel):
    """A 4-unit tanh RNN with a dropout (RNG state in ``rest``) and a regularization hook."""

    def __init__(self, rngs, penalty=0.0):
        encoder, self.head = make_io((5,), 4, 4, 3, rngs=rngs)
        self.encoder = nnx.Sequential(encoder, nnx.Dropout(0.1, rngs=rngs))  # outside the scan
        self.w = nnx.Linear(4, 4, rngs=rngs)
        self.penalty = penalty

    def initial_state(self, batch_size):
        return jnp.zeros((batch_size, 4))

    def core_step(self, carry, features):
        h = jnp.tanh(self.w(carry) + features)
        return h, h

    def regularization(self):
        return self.penalty * jnp.sum(self.w.kernel[...] ** 2)


def spec(**kw):
    base = dict(steps=10, batch_size=4, window=8, lr=1e-2, warmup_steps=2, log_every=2, checkpoint_every=3,
                progress=False, class_balance="none")
    return TrainSpec(**{**base, **kw})


def params_of(model):
    return jax.tree.leaves(nnx.state(model, nnx.Param))


def test_class_weights_balance_and_weighted_cross_entropy():
    actions = np.array([0] * 8 + [1] * 2)
    w = class_weights(actions, 3, "weight")
    assert w[2] == 0 and w[1] == pytest.approx(4 * w[0])
    freq = np.array([0.8, 0.2, 0.0])
    assert float((freq * w).sum()) == pytest.approx(1.0)
    np.testing.assert_array_equal(class_weights(actions, 3, "none"), np.ones(3))
    logits = jnp.array([[[5.0, 0, 0], [0, 5.0, 0]]])
    loss_plain, acc = cross_entropy(logits, jnp.array([[0, 0]]), jnp.ones(3))
    loss_weighted, _ = cross_entropy(logits, jnp.array([[0, 0]]), jnp.array([1.0, 1.0, 1.0]) * 3)
    assert float(acc) == 0.5 and float(loss_plain) == pytest.approx(float(loss_weighted))


def test_schedule_warms_up_then_decays():
    s = make_schedule(1.0, 100, 10, 0.1)
    assert float(s(0)) == 0.0 and float(s(10)) == pytest.approx(1.0)
    assert float(s(55)) < 1.0 and float(s(100)) == pytest.approx(0.1)


def test_bad_train_settings_fail_before_training():
    w = make_windows(memory_task(), 8, num_actions=3)
    for bad in (dict(steps=0), dict(batch_size=-1), dict(window=0), dict(class_balance="x")):
        with pytest.raises(TrainSpecError):
            train(Tiny(nnx.Rngs(0)), w, spec(**bad), seed=0, class_weights=np.ones(3))


def test_regularization_hook_is_added_to_the_loss(tmp_path):
    d = memory_task()
    w = make_windows(d, 8, num_actions=3)
    train(Tiny(nnx.Rngs(0), penalty=10.0), w, spec(steps=2, log_every=1), seed=0, class_weights=np.ones(3),
          run_dir=tmp_path, tensorboard=False)
    rows = read_metrics(tmp_path)
    assert rows[0]["regularization"] > 0
    assert rows[0]["loss"] == pytest.approx(rows[0]["ce"] + rows[0]["regularization"], rel=1e-5)


def test_resumed_run_ends_with_exactly_the_uninterrupted_parameters(tmp_path):
    d = memory_task()
    w = make_windows(d, 8, num_actions=3)
    weights = class_weights(d.actions, 3, "weight")

    straight = Tiny(nnx.Rngs(0))
    train(straight, w, spec(), seed=5, class_weights=weights, run_dir=tmp_path / "a", tensorboard=False)

    class Killed(Exception):
        pass

    calls = []

    def crash_once(model, step):
        calls.append(step)
        if len(calls) == 1:
            raise Killed  # dies at step 7, after the checkpoint at step 6
        return {}

    interrupted = Tiny(nnx.Rngs(0))
    with pytest.raises(Killed):
        train(interrupted, w, spec(eval_every=7), seed=5, class_weights=weights, run_dir=tmp_path / "b",
              evaluate=crash_once, tensorboard=False)
    resumed = Tiny(nnx.Rngs(0))
    result = train(resumed, w, spec(eval_every=7), seed=5, class_weights=weights, run_dir=tmp_path / "b",
                   evaluate=crash_once, tensorboard=False)
    assert result.resumed_from == 6
    for a, b in zip(params_of(straight), params_of(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the logs of the resumed run read like an uninterrupted one: each step once
    steps = [r["step"] for r in read_metrics(tmp_path / "b") if "loss" in r]
    assert steps == [2, 4, 6, 8, 10]


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    good = memory_task()
    w = make_windows(good, 8, num_actions=3)
    model = Tiny(nnx.Rngs(0))
    train(model, w, spec(steps=3), seed=0, class_weights=np.ones(3), run_dir=tmp_path, tensorboard=False)
    saved = [np.asarray(p) for p in params_of(model)]

    bad = make_windows(memory_task(nan_from=0), 8, num_actions=3)
    with pytest.raises(NonFiniteLossError, match=r"at step 4: the loss became non-finite.*Last good checkpoint: .*3"):
        train(Tiny(nnx.Rngs(0)), bad, spec(steps=6), seed=0, class_weights=np.ones(3), run_dir=tmp_path,
              tensorboard=False)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.latest_step() == 3
    _, params, rest = nnx.split(Tiny(nnx.Rngs(0)), nnx.Param, ...)
    params, _ = ckpt.restore_params(3, params=params, rest=rest)
    ckpt.close()
    for a, b in zip(saved, jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))



def test_fresh_and_restored_state_lower_to_one_program(tmp_path):
    """A resumed run (each DAgger round) steps the same XLA program as a fresh one, so JAX's
    compilation cache serves it: `replicate` places restored (committed) and fresh arrays alike."""
    from tnd.training.parallel import replicate

    model = Tiny(nnx.Rngs(0))
    train(model, make_windows(memory_task(), 8, num_actions=3), spec(steps=2), seed=0, class_weights=np.ones(3),
          run_dir=tmp_path, tensorboard=False)
    _, fresh, rest = nnx.split(Tiny(nnx.Rngs(1)), nnx.Param, ...)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    restored, _ = ckpt.restore_params(2, params=fresh, rest=rest)
    ckpt.close()

    def lowered(params):
        return jax.jit(lambda p: jax.tree.map(lambda x: 2 * x, p)).lower(replicate(params, None)).as_text()

    assert lowered(fresh) == lowered(restored)

@pytest.mark.parametrize("name, options", [
    ("lstm", dict(hidden_size=32)),
    ("tnd", dict(num_neurons=16, topology="fully_connected")),
])
def test_overfits_a_tiny_dataset(name, options):
    d = memory_task()
    w = make_windows(d, 32, num_actions=3)
    model = build_model(name, obs_shape=(5,), num_actions=3, rngs=nnx.Rngs(0), **options)
    train(model, w, spec(steps=300, batch_size=8, window=32, lr=2e-2, warmup_steps=10, log_every=100,
                         checkpoint_every=0), seed=0, class_weights=np.ones(3))
    x, labels, resets = gather_windows(w.arrays(), w.starts, 32)
    _, logits = model(x, resets)
    accuracy = float((np.asarray(logits).argmax(-1) == np.asarray(labels)).mean())
    assert accuracy >= 0.95, f"{name} reached only {accuracy:.3f} training accuracy"
