"""The Transformer baseline: a causal decoder with a sliding window of the last W steps.

Built from Flax NNX modules: `nnx.MultiHeadAttention` (its ``attention_fn`` wrapped to apply
rotary position embeddings), `nnx.LayerNorm` and an `nnx.Linear` MLP, pre-LN blocks:

    x_0 = features W_in                                  [B, T, D]
    x_l+1 = x_l + MHA(LN(x_l)) ;  x_l+1 += MLP(LN(x_l+1))
    out = LN(x_L)  -> action head

Positional information is rotary (RoPE), so attention scores depend only on the offset
``t - s`` between query and key. That makes the sequence call and stepping agree exactly
whatever the absolute position: the key/value inputs are laid out oldest -> newest with the
query last, and the query's position is taken as ``len(keys) - len(queries) + i``.

Bounded context and the carry. The carry holds, per layer, the attention *inputs*
``LN(x_l)`` of the last ``W - 1`` steps (``cache [B, L, W-1, D]``; carry leaves lead with the batch) and which of those slots
are valid (``valid [B, W-1]``; false after a reset / at the start). `step` attends from the
current step over ``cache + current`` (W keys) and shifts the window: a pure, explicit
carry (no nnx decode cache). The sequence call (`core_sequence`) runs all T steps in
parallel with keys ``[cache; x]`` (W-1+T) and the mask

    allowed[t, s] = s <= t  and  t - s < W  and  same segment  and  slot valid,

where segments are split by the reset mask, so it equals T calls of `step`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from tnd.models.base import SequenceModel
from tnd.models.encoders import make_io
from tnd.models.registry import register_model


def _rotate(x: jax.Array, positions: jax.Array) -> jax.Array:
    """RoPE on ``x [..., L, heads, head_dim]`` at integer ``positions [L]`` (head_dim even)."""
    half = x.shape[-1] // 2
    freqs = 1.0 / (10000.0 ** (jnp.arange(half, dtype=jnp.float32) / half))
    angles = positions.astype(jnp.float32)[:, None] * freqs[None, :]  # [L, half]
    cos, sin = jnp.cos(angles)[:, None, :], jnp.sin(angles)[:, None, :]  # [L, 1, half]
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1).astype(x.dtype)


def rope_attention(query: jax.Array, key: jax.Array, value: jax.Array, **kwargs) -> jax.Array:
    """`nnx.dot_product_attention` with rotary positions; queries are the *last* key positions.

    query ``[..., Lq, heads, d]``, key/value ``[..., Lk, heads, d]``: query ``i`` sits at
    position ``Lk - Lq + i`` and key ``s`` at ``s``, so only offsets matter.
    """
    lq, lk = query.shape[-3], key.shape[-3]
    query = _rotate(query, jnp.arange(lq) + (lk - lq))
    key = _rotate(key, jnp.arange(lk))
    return nnx.dot_product_attention(query, key, value, **kwargs)


class Block(nnx.Module):
    """Pre-LN decoder block. ``__call__(x, keys_in, mask)``: ``x [.., Lq, D]`` is the residual
    stream, ``keys_in [.., Lk, D]`` the (already normalised) attention inputs ending with
    ``LN(x)``; ``mask [.., 1, Lq, Lk]``."""

    def __init__(self, d_model: int, num_heads: int, mlp_ratio: int, *, rngs: nnx.Rngs):
        self.norm_attn = nnx.LayerNorm(d_model, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(
            num_heads, d_model, attention_fn=rope_attention, decode=False, rngs=rngs
        )
        self.norm_mlp = nnx.LayerNorm(d_model, rngs=rngs)
        self.mlp_in = nnx.Linear(d_model, mlp_ratio * d_model, rngs=rngs)
        self.mlp_out = nnx.Linear(mlp_ratio * d_model, d_model, rngs=rngs)

    def __call__(self, x: jax.Array, keys_in: jax.Array, mask: jax.Array) -> jax.Array:
        x = x + self.attn(self.norm_attn(x), keys_in, keys_in, mask=mask)
        return x + self.mlp_out(nnx.gelu(self.mlp_in(self.norm_mlp(x))))


class Transformer(SequenceModel):
    """Sliding-window causal decoder; carry ``{"cache": [B, L, W-1, D], "valid": [B, W-1]}``."""

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        *,
        d_model: int,
        num_heads: int = 2,
        num_layers: int = 2,
        window: int = 32,
        mlp_ratio: int = 2,
        encoder_features: int = 32,
        rngs: nnx.Rngs,
    ):
        if d_model < 1 or num_heads < 1 or d_model % (2 * num_heads):
            raise ValueError(
                f"transformer: d_model ({d_model}) must be a positive multiple of 2 * num_heads "
                f"({2 * num_heads}) so that each head has an even size for rotary positions."
            )
        if window < 1 or num_layers < 1 or mlp_ratio < 1:
            raise ValueError(
                f"transformer: window, num_layers and mlp_ratio must be >= 1, got {window}, {num_layers}, {mlp_ratio}."
            )
        self.d_model, self.num_layers, self.window = d_model, num_layers, window
        self.encoder, self.head = make_io(obs_shape, encoder_features, d_model, num_actions, rngs=rngs)
        self.input = nnx.Linear(encoder_features, d_model, rngs=rngs)
        self.blocks = nnx.List([Block(d_model, num_heads, mlp_ratio, rngs=rngs) for _ in range(num_layers)])
        self.norm_out = nnx.LayerNorm(d_model, rngs=rngs)

    def initial_state(self, batch_size: int) -> dict:
        w = self.window - 1
        return {
            "cache": jnp.zeros((batch_size, self.num_layers, w, self.d_model), jnp.float32),
            "valid": jnp.zeros((batch_size, w), bool),
        }

    def core_step(self, carry: dict, features: jax.Array) -> tuple[dict, jax.Array]:
        x = self.input(features)[:, None, :]  # [B, 1, D]
        batch = x.shape[0]
        valid = jnp.concatenate([carry["valid"], jnp.ones((batch, 1), bool)], axis=1)  # [B, W]
        mask = valid[:, None, None, :]
        caches = []
        for layer, block in enumerate(self.blocks):
            keys_in = jnp.concatenate([carry["cache"][:, layer], block.norm_attn(x)], axis=1)  # [B, W, D]
            caches.append(keys_in[:, 1:])
            x = block(x, keys_in, mask)
        carry = {"cache": jnp.stack(caches, axis=1), "valid": valid[:, 1:]}
        return carry, self.norm_out(x[:, 0])

    def core_sequence(self, carry: dict, features: jax.Array, resets: jax.Array) -> tuple[dict, jax.Array]:
        batch, time = features.shape[:2]
        w = self.window - 1
        # Segment ids: cache slots belong to segment 0, step t to the number of resets up to t.
        segment = jnp.cumsum(resets.astype(jnp.int32), axis=1)  # [B, T]
        key_segment = jnp.concatenate([jnp.zeros((batch, w), jnp.int32), segment], axis=1)  # [B, W-1+T]
        key_valid = jnp.concatenate([carry["valid"], jnp.ones((batch, time), bool)], axis=1)
        q_pos = jnp.arange(time)[:, None] + w  # query t sits at key position w + t
        k_pos = jnp.arange(w + time)[None, :]
        band = (k_pos <= q_pos) & (q_pos - k_pos < self.window)  # [T, W-1+T]
        mask = band[None] & (segment[:, :, None] == key_segment[:, None, :]) & key_valid[:, None, :]
        mask = mask[:, None]  # [B, 1, T, W-1+T]
        x = self.input(features)
        caches = []
        for layer, block in enumerate(self.blocks):
            keys_in = jnp.concatenate([carry["cache"][:, layer], block.norm_attn(x)], axis=1)
            caches.append(keys_in[:, keys_in.shape[1] - w:])
            x = block(x, keys_in, mask)
        # Slots valid for the next step: in the window and in the last segment.
        # Invalid slots are zeroed, as `step` after a reset leaves them (their content is
        # never attended to; zeroing only makes the two carries identical).
        valid = (key_valid & (key_segment == segment[:, -1:]))[:, key_valid.shape[1] - w:]
        cache = jnp.stack(caches, axis=1) * valid[:, None, :, None]
        carry = {"cache": cache, "valid": valid}
        return carry, self.norm_out(x)


@register_model("transformer", width_option="d_model")
def build_transformer(
    *,
    obs_shape,
    num_actions,
    rngs: nnx.Rngs,
    d_model: int = 32,
    num_heads: int = 2,
    num_layers: int = 2,
    window: int = 32,
    mlp_ratio: int = 2,
    encoder_features: int = 32,
) -> Transformer:
    return Transformer(
        obs_shape, num_actions, d_model=d_model, num_heads=num_heads, num_layers=num_layers,
        window=window, mlp_ratio=mlp_ratio, encoder_features=encoder_features, rngs=rngs,
    )


def _width_multiple(num_heads: int = 2, **_) -> int:
    """Budget sizing searches d_model over multiples of this (even head size for RoPE)."""
    return 2 * num_heads


build_transformer.width_multiple = _width_multiple
