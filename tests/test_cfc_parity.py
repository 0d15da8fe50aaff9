"""Parity of the Flax CfC (tnd.models.cfc) with the reference PyTorch ncps 1.0.1 cells.

The same weights are copied into both (torch ``[out, in]`` -> ``nnx.Linear`` ``[in, out]``);
outputs over a random sequence and the gradients of a random projection of all outputs
w.r.t. the inputs, the initial state and every weight are compared, for the three modes,
with and without a sparsity mask, with per-sample time spans, for the backbone activations,
for ncps's sequence wrapper ``CfC``, and for the wired (NCP) cell.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")
ncps_torch = pytest.importorskip("ncps.torch")
ncps_wirings = pytest.importorskip("ncps.wirings")

from tnd.models.cfc import CfCCell, WiredCfCCell  # noqa: E402

B, T, I, H = 3, 5, 4, 6
ATOL = 2e-5


@pytest.fixture(autouse=True)
def full_precision_matmuls():
    """Exact float32 matmuls (GPUs default to TF32, which would loosen every comparison)."""
    with jax.default_matmul_precision("highest"):
        yield


def copy_cell(torch_cell, jax_cell) -> None:
    """Copies every trainable torch parameter into the matching NNX variable."""
    linears = {"ff1": jax_cell.ff1}
    if torch_cell.mode != "pure":
        linears.update(ff2=jax_cell.ff2, time_a=jax_cell.time_a, time_b=jax_cell.time_b)
    modules = dict(torch_cell.named_modules())
    for name, linear in linears.items():
        linear.kernel[...] = jnp.asarray(modules[name].weight.detach().numpy().T)
        linear.bias[...] = jnp.asarray(modules[name].bias.detach().numpy())
    torch_backbone = [m for m in (torch_cell.backbone or []) if isinstance(m, torch.nn.Linear)]
    assert len(torch_backbone) == len(jax_cell.backbone)
    for tl, jl in zip(torch_backbone, jax_cell.backbone):
        jl.kernel[...] = jnp.asarray(tl.weight.detach().numpy().T)
        jl.bias[...] = jnp.asarray(tl.bias.detach().numpy())
    if torch_cell.mode == "pure":
        jax_cell.w_tau[...] = jnp.asarray(torch_cell.w_tau.detach().numpy()[0])
        jax_cell.A[...] = jnp.asarray(torch_cell.A.detach().numpy()[0])


def torch_grads(torch_cell) -> dict[str, np.ndarray]:
    """name -> grad, in the NNX layout (kernels transposed, [1, H] rows squeezed)."""
    out = {}
    for name, p in torch_cell.named_parameters():
        if not p.requires_grad:
            continue
        g = p.grad.detach().numpy()
        out[name] = g.T if name.endswith("weight") else (g[0] if name in ("w_tau", "A") else g)
    return out


def jax_grads(grads, cell) -> dict[str, np.ndarray]:
    out = {}
    for name in ("ff1", "ff2", "time_a", "time_b"):
        if hasattr(cell, name):
            out[f"{name}.weight"] = np.asarray(getattr(grads, name).kernel[...])
            out[f"{name}.bias"] = np.asarray(getattr(grads, name).bias[...])
    for i in range(len(cell.backbone)):
        out[f"backbone.{2 * i}.weight"] = np.asarray(grads.backbone[i].kernel[...])
        out[f"backbone.{2 * i}.bias"] = np.asarray(grads.backbone[i].bias[...])
    if cell.mode == "pure":
        out["w_tau"], out["A"] = np.asarray(grads.w_tau[...]), np.asarray(grads.A[...])
    return out


def random_data(seed: int, with_timespans: bool):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, I)).astype(np.float32)
    h0 = rng.normal(size=(B, H)).astype(np.float32) * 0.5
    ts = rng.uniform(0.2, 2.0, size=(B, T)).astype(np.float32) if with_timespans else None
    proj = rng.normal(size=(B, T, H)).astype(np.float32)
    return x, h0, ts, proj


def run_torch(cell, x, h0, ts, proj):
    xt = torch.tensor(x, requires_grad=True)
    ht = torch.tensor(h0, requires_grad=True)
    h, outs = ht, []
    for t in range(T):
        # ts as [B, 1]: ncps's CfC wrapper squeezes it to [B], which only broadcasts when B == H.
        step_ts = 1.0 if ts is None else torch.tensor(ts[:, t : t + 1])
        out, h = cell(xt[:, t], h, step_ts)
        outs.append(out)
    outs = torch.stack(outs, 1)
    (outs * torch.tensor(proj)).sum().backward()
    return outs.detach().numpy(), xt.grad.numpy(), ht.grad.numpy()


def jax_loss(cell, x, h0, ts, proj):
    def body(h, inputs):
        x_t, ts_t = inputs
        h = cell(h, x_t, ts_t)
        return h, h

    ts_seq = jnp.ones((T, B)) if ts is None else jnp.swapaxes(ts, 0, 1)
    _, outs = jax.lax.scan(body, h0, (jnp.swapaxes(x, 0, 1), ts_seq))
    outs = jnp.swapaxes(outs, 0, 1)
    return jnp.sum(outs * proj), outs


def compare(torch_cell, jax_cell, seed, with_timespans):
    x, h0, ts, proj = random_data(seed, with_timespans)
    t_out, t_gx, t_gh = run_torch(torch_cell, x, h0, ts, proj)
    grad_fn = nnx.grad(jax_loss, argnums=(0, 1, 2), has_aux=True)
    (g_cell, g_x, g_h), j_out = grad_fn(jax_cell, jnp.asarray(x), jnp.asarray(h0), ts, jnp.asarray(proj))
    np.testing.assert_allclose(np.asarray(j_out), t_out, atol=ATOL, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(g_x), t_gx, atol=ATOL, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(g_h), t_gh, atol=ATOL, rtol=1e-4)
    return g_cell


MODES = ("default", "no_gate", "pure")


@pytest.mark.parametrize("with_timespans", [False, True], ids=["ts=1", "timespans"])
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "mask"])
@pytest.mark.parametrize("mode", MODES)
def test_cell_parity(mode, masked, with_timespans):
    torch.manual_seed(0)
    backbone_layers, backbone_units = (0, 0) if masked else (2, 7)
    mask = None
    if masked:  # an NCP-like mask over [inputs; hidden] -> hidden, with ncps's signed entries
        rng = np.random.default_rng(1)
        mask = rng.choice([-1, 0, 0, 1], size=(I + H, H)).astype(np.int32)
        mask[np.arange(H), np.arange(H)] = 1
    torch_cell = ncps_torch.CfCCell(
        I, H, mode=mode, backbone_activation="lecun_tanh", backbone_units=backbone_units,
        backbone_layers=backbone_layers, sparsity_mask=mask,
    )
    jax_cell = CfCCell(
        I, H, mode=mode, backbone_activation="lecun_tanh", backbone_units=backbone_units,
        backbone_layers=backbone_layers, sparsity_mask=mask, rngs=nnx.Rngs(0),
    )
    copy_cell(torch_cell, jax_cell)
    g_cell = compare(torch_cell, jax_cell, seed=2, with_timespans=with_timespans)
    t_g, j_g = torch_grads(torch_cell), jax_grads(g_cell, jax_cell)
    assert set(t_g) == set(j_g)
    for name in t_g:
        np.testing.assert_allclose(j_g[name], t_g[name], atol=ATOL, rtol=1e-4, err_msg=name)
    if masked:  # masked kernel entries get no gradient in either
        zero = np.abs(mask) == 0
        assert np.all(j_g["ff1.weight"][zero] == 0)


@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "gelu"])
def test_backbone_activations(activation):
    torch.manual_seed(1)
    torch_cell = ncps_torch.CfCCell(I, H, backbone_activation=activation, backbone_units=5, backbone_layers=1)
    jax_cell = CfCCell(I, H, backbone_activation=activation, backbone_units=5, backbone_layers=1, rngs=nnx.Rngs(0))
    copy_cell(torch_cell, jax_cell)
    compare(torch_cell, jax_cell, seed=3, with_timespans=False)


@pytest.mark.parametrize("mode", MODES)
def test_sequence_wrapper_parity(mode):
    """ncps.torch.CfC (its own sequence loop, zero initial state) vs a scan of our cell."""
    torch.manual_seed(2)
    rnn = ncps_torch.CfC(I, H, mode=mode, backbone_units=8, backbone_layers=1)
    jax_cell = CfCCell(I, H, mode=mode, backbone_units=8, backbone_layers=1, rngs=nnx.Rngs(0))
    copy_cell(rnn.rnn_cell, jax_cell)
    x = np.random.default_rng(4).normal(size=(B, T, I)).astype(np.float32)
    t_out, t_h = rnn(torch.tensor(x))
    _, j_out = jax_loss(jax_cell, jnp.asarray(x), jnp.zeros((B, H)), None, jnp.zeros((B, T, H)))
    np.testing.assert_allclose(np.asarray(j_out), t_out.detach().numpy(), atol=ATOL, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(j_out[:, -1]), t_h.detach().numpy(), atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_wired_cell_parity(mode):
    """ncps's WiredCfCCell on an AutoNCP wiring vs ours built from the same wiring."""
    torch.manual_seed(3)
    wiring = ncps_wirings.AutoNCP(10, 2, seed=5)
    torch_cell = ncps_torch.WiredCfCCell(I, wiring, mode)
    layers = [wiring.get_neurons_of_layer(l) for l in range(wiring.num_layers)]
    jax_cell = WiredCfCCell(
        I, layers, wiring.adjacency_matrix, wiring.sensory_adjacency_matrix, mode=mode, rngs=nnx.Rngs(0)
    )
    for l, cell in enumerate(jax_cell.layers):
        copy_cell(getattr(torch_cell, f"layer_{l}"), cell)
    n = wiring.units
    rng = np.random.default_rng(6)
    x = rng.normal(size=(B, T, I)).astype(np.float32)
    ts = rng.uniform(0.5, 1.5, size=(B, T)).astype(np.float32)
    h, outs = torch.zeros(B, n), []
    for t in range(T):
        out, h = torch_cell(torch.tensor(x[:, t]), h, torch.tensor(ts[:, t : t + 1]))
        outs.append(out.detach().numpy())
    jh, jouts = jnp.zeros((B, n)), []
    for t in range(T):
        out, jh = jax_cell(jh, jnp.asarray(x[:, t]), jnp.asarray(ts[:, t]))
        jouts.append(np.asarray(out))
    np.testing.assert_allclose(np.stack(jouts, 1), np.stack(outs, 1), atol=ATOL, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(jh), h.detach().numpy(), atol=ATOL, rtol=1e-4)
    trainable = sum(p.numel() for p in torch_cell.parameters() if p.requires_grad)
    assert sum(x.size for x in jax.tree.leaves(nnx.state(jax_cell, nnx.Param))) == trainable


def test_unknown_mode_and_dropout_are_errors():
    with pytest.raises(ValueError, match="valid options"):
        CfCCell(I, H, mode="fast", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="dropout"):
        CfCCell(I, H, backbone_dropout=0.1, rngs=nnx.Rngs(0))
