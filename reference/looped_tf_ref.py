"""Independent PyTorch reference for looped-tf (docs/MATH.md §1-§5, and the variants of §12).

Follows docs/MATH.md, written independently of the C code. Parameter names equal those of the paper's PyTorch
code, so a state_dict of this module loads into the paper's models and vice versa:
  _read_in.*, _backbone.transformer.wpe.weight, _backbone.transformer.h.{i}.*,
  _backbone.transformer.ln_f.*, _read_out.*
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-5


def gelu_tanh(x):
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


class LayerNorm(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))
        self.bias = nn.Parameter(torch.zeros(C))

    def forward(self, x):
        # biased variance, eps 1e-5
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, LN_EPS)


class Attention(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        assert C % H == 0
        self.C, self.H = C, H
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)

    def forward(self, x):
        B, N, C = x.shape
        H, hs = self.H, C // self.H
        q, k, v = self.c_attn(x).split(C, dim=2)           # each [B, N, C]
        # head j uses columns j*hs .. (j+1)*hs-1
        q = q.view(B, N, H, hs).transpose(1, 2)             # [B, H, N, hs]
        k = k.view(B, N, H, hs).transpose(1, 2)
        v = v.view(B, N, H, hs).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # [B, H, N, N]
        causal = torch.ones(N, N, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        att = torch.softmax(scores, dim=-1)
        y = att @ v                                         # [B, H, N, hs]
        y = y.transpose(1, 2).reshape(B, N, C)              # concat heads
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.c_fc = nn.Linear(C, 4 * C)
        self.c_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        return self.c_proj(gelu_tanh(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.ln_1 = LayerNorm(C)
        self.attn = Attention(C, H)
        self.ln_2 = LayerNorm(C)
        self.mlp = MLP(C)

    def forward(self, h):
        h = h + self.attn(self.ln_1(h))
        h = h + self.mlp(self.ln_2(h))
        return h


class Backbone(nn.Module):
    """f(u): add wpe, L pre-LN blocks, ln_f (docs/MATH.md §2)."""

    def __init__(self, C, H, L, n_positions):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wpe=nn.Embedding(2 * n_positions + 1, C),
            h=nn.ModuleList([Block(C, H) for _ in range(L)]),
            ln_f=LayerNorm(C),
        ))

    def forward(self, u, every=None, no_pos=False):
        """every: a tensor added to the input of every block (§12, the paper's add_inputs_embeds);
        no_pos: the positions are not added (§12, rm_pos_embd)."""
        N = u.shape[1]
        assert N <= self.transformer.wpe.weight.shape[0], "sequence longer than wpe table"
        h = u if no_pos else u + self.transformer.wpe.weight[:N]
        for blk in self.transformer.h:
            h = blk(h if every is None else h + every)
        return self.transformer.ln_f(h)


def combine(xs, ys):
    """xs [B,n,d], ys [B,n] -> z [B,2n,d]: z[2i]=x_i, z[2i+1]=(y_i,0,...,0)."""
    B, n, d = xs.shape
    yw = torch.zeros_like(xs)
    yw[:, :, 0] = ys
    return torch.stack((xs, yw), dim=2).reshape(B, 2 * n, d)


def state_mask(n, mode, N, dtype, device):
    """0/1 mask over the 2n tokens, shape [1, 2n, 1]; None when nothing is masked."""
    if mode == "none":
        return None
    m = torch.zeros(2 * n, dtype=dtype, device=device)
    keep = min(2 * N, 2 * n)
    if mode == "last":
        if keep > 0:
            m[2 * n - keep:] = 1
    elif mode == "first":
        m[:keep] = 1
    else:
        raise ValueError(mode)
    return m.view(1, 2 * n, 1)


class LoopedTF(nn.Module):
    """kind='standard': y_hat = read_out(f(E))[:, 0::2]  (inject_every_block: E enters every block).
    kind='looped':   Y_0 = 0, Y_{t+1} = f(mask(Y_t) + E)  (loop_func 'mul': Y_0 = 1, f(Y_t * E)).
    kind='tied':     Y_0 = E, Y_{t+1} = f(Y_t), b applications, loss after the last only.
    no_pos_emb: f adds no positions (wpe stays a parameter, unused)."""

    def __init__(self, d, n_positions, C, H, L, kind="looped",
                 mask="none", mask_n=0, mask_when="both",
                 loop_func="add", inject_every_block=False, no_pos_emb=False, n_classes=0):
        super().__init__()
        assert kind in ("standard", "looped", "tied")
        assert mask in ("none", "last", "first")
        assert mask_when in ("train", "eval", "both")
        assert loop_func in ("add", "mul")
        assert loop_func == "add" or (kind == "looped" and mask == "none")
        assert not inject_every_block or kind == "standard"
        self.d, self.n_positions, self.C, self.H, self.L = d, n_positions, C, H, L
        self.kind, self.mask, self.mask_n, self.mask_when = kind, mask, mask_n, mask_when
        self.loop_func, self.inject_every_block, self.no_pos_emb = loop_func, inject_every_block, no_pos_emb
        self._read_in = nn.Linear(d, C)
        self._backbone = Backbone(C, H, L, n_positions)
        self.n_classes = n_classes                 # 0: regression; K >= 2: K logits, cross-entropy (§13)
        self._read_out = nn.Linear(C, n_classes if n_classes else 1)

    def readout(self, Y):
        if self.n_classes:
            return self._read_out(Y)[:, 0::2, :]   # [B, n, K] logits of the x tokens
        return self._read_out(Y)[:, 0::2, 0]  # [B, n]

    def _mask_for(self, n, training, ref):
        applies = (self.mask_when == "both"
                   or (self.mask_when == "train" and training)
                   or (self.mask_when == "eval" and not training))
        if not applies:
            return None
        return state_mask(n, self.mask, self.mask_n, ref.dtype, ref.device)

    def forward(self, xs, ys, b=1, T=None, training=True):
        """Returns (preds, s): preds is a list of b tensors [B, n], the prediction after
        iterations 1..b; iterations t < s ran under no_grad (their preds carry no graph).
        training=True: truncation s = max(0, b-T) and train-time mask rule;
        training=False: s = 0 (caller wraps in no_grad if wanted), eval-time mask rule."""
        n = xs.shape[1]
        E = self._read_in(combine(xs, ys))
        f = lambda u: self._backbone(u, no_pos=self.no_pos_emb)
        if self.kind == "standard":
            every = E if self.inject_every_block else None
            return [self.readout(self._backbone(E, every=every, no_pos=self.no_pos_emb))], 0
        if self.kind == "tied":      # gradient through all b applications
            Y, preds = E, []
            for t in range(b):
                Y = f(Y)
                preds.append(self.readout(Y))
            return preds, 0
        T = b if T is None else T
        s = max(0, b - T) if training else 0
        m = self._mask_for(n, training, E)
        Y = torch.zeros_like(E) if self.loop_func == "add" else torch.ones_like(E)

        def step(Y):
            if self.loop_func == "mul":
                return f(Y * E)
            return f((Y if m is None else Y * m) + E)

        preds = []
        for t in range(b):
            if t < s:
                with torch.no_grad():
                    Y = step(Y)
                    preds.append(self.readout(Y))
            else:
                if t == s:
                    Y = Y.detach()  # Y_s is a constant
                Y = step(Y)
                preds.append(self.readout(Y))
        return preds, s

    def train_loss(self, xs, ys, b=1, T=None):
        """Training loss: mean over window iterations s..b-1 (tied: the last only), batch,
        points of (y_hat-y)^2."""
        preds, s = self.forward(xs, ys, b, T, training=True)
        window = torch.stack(preds[-1:] if self.kind == "tied" else preds[s:])   # [iters, B, n(, K)]
        if self.n_classes:   # §13: mean cross-entropy over iterations, prompts and points
            labels = ys.long().unsqueeze(0).expand(window.shape[0], -1, -1)
            loss = F.cross_entropy(window.reshape(-1, self.n_classes), labels.reshape(-1))
        else:
            loss = (window - ys.unsqueeze(0)).square().mean()
        return loss, preds, s


def init_paper(model, generator=None):
    """docs/MATH.md §5 initialisation (paper's code): backbone Linear weights N(0,0.02),
    biases 0, wpe N(0,0.02), LayerNorm 1/0, then both c_proj weights N(0, 0.02/sqrt(2L));
    read_in/read_out: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."""
    g = generator
    L = model.L
    with torch.no_grad():
        for name, mod in model._backbone.named_modules():
            if isinstance(mod, nn.Linear):
                mod.weight.normal_(0.0, 0.02, generator=g)
                mod.bias.zero_()
            elif isinstance(mod, nn.Embedding):
                mod.weight.normal_(0.0, 0.02, generator=g)
            elif isinstance(mod, LayerNorm):
                mod.weight.fill_(1.0)
                mod.bias.zero_()
        for name, p in model._backbone.named_parameters():
            if name.endswith("c_proj.weight"):
                p.normal_(0.0, 0.02 / math.sqrt(2 * L), generator=g)
        for lin in (model._read_in, model._read_out):
            bound = 1.0 / math.sqrt(lin.weight.shape[1])
            lin.weight.uniform_(-bound, bound, generator=g)
            lin.bias.uniform_(-bound, bound, generator=g)
    return model


def init_random_test(model, generator=None):
    """Fixture weights: every parameter U(-0.5,0.5); LayerNorm weights 1 + U(-0.3,0.3)."""
    g = generator
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_ln_weight = name.endswith("weight") and (
                ".ln_1." in name or ".ln_2." in name or ".ln_f." in name)
            u = torch.rand(p.shape, dtype=p.dtype, generator=g)
            if is_ln_weight:
                p.copy_(1.0 + 0.6 * (u - 0.5))
            else:
                p.copy_(u - 0.5)
    return model
