"""Write the text fixtures in tests/fixtures/ that the C tests compare against, after
self-checking the reference (finite differences, truncation, state mask).

Usage (from the repository root):  python3 reference/make_fixtures.py [--no-check]
All computation is float64. Deterministic: each case has its own fixed seed.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from looped_tf_ref import LoopedTF, init_random_test, combine, gelu_tanh, Attention  # noqa: E402

torch.set_default_dtype(torch.float64)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTDIR = os.path.join(ROOT, "tests", "fixtures")

BASE = dict(d=3, n_points=5, n_positions=6, C=16, H=2, B=3)
CASES = [
    ("standard", dict(BASE, L=2, kind="standard", b=1, T=1, seed=101)),
    ("looped", dict(BASE, L=1, kind="looped", b=5, T=3, seed=102)),
    ("looped_L2", dict(BASE, L=2, kind="looped", b=4, T=4, seed=103)),
    ("looped_last2", dict(BASE, L=1, kind="looped", b=5, T=3, seed=104,
                          mask="last", mask_n=2, mask_when="both")),
    ("looped_first2", dict(BASE, L=1, kind="looped", b=5, T=3, seed=105,
                           mask="first", mask_n=2, mask_when="train")),
    # the paper code's variants (docs/MATH.md §12)
    ("looped_mul", dict(BASE, L=1, kind="looped", b=5, T=3, seed=106, loop_func="mul")),
    ("standard_every", dict(BASE, L=3, kind="standard", b=1, T=1, seed=107, inject_every_block=1)),
    ("looped_nopos", dict(BASE, L=1, kind="looped", b=4, T=2, seed=108, no_pos_emb=1)),
    ("tied", dict(BASE, L=1, kind="tied", b=4, T=4, seed=109)),
    # the classification read-out (docs/MATH.md §13)
    ("looped_cls3", dict(BASE, L=1, kind="looped", b=4, T=4, seed=110, n_classes=3)),
]
VARIANT_KEYS = ("loop_func", "inject_every_block", "no_pos_emb")


def build(cfg):
    """Model with random test weights and a random prompt, all from cfg['seed']."""
    torch.manual_seed(cfg["seed"])
    m = LoopedTF(cfg["d"], cfg["n_positions"], cfg["C"], cfg["H"], cfg["L"], cfg["kind"],
                 cfg.get("mask", "none"), cfg.get("mask_n", 0), cfg.get("mask_when", "both"),
                 cfg.get("loop_func", "add"), bool(cfg.get("inject_every_block", 0)),
                 bool(cfg.get("no_pos_emb", 0)), cfg.get("n_classes", 0))
    m = m.double()
    init_random_test(m)
    xs = torch.randn(cfg["B"], cfg["n_points"], cfg["d"])
    ys = torch.randn(cfg["B"], cfg["n_points"])
    if cfg.get("n_classes"):   # class indices, as floats (the y token carries them)
        ys = torch.randint(cfg["n_classes"], (cfg["B"], cfg["n_points"])).double()
    return m, xs, ys


def compute(m, xs, ys, cfg):
    m.zero_grad(set_to_none=True)
    loss, preds, s = m.train_loss(xs, ys, cfg["b"], cfg["T"])
    loss.backward()
    # a parameter the loss does not use (wpe with no_pos_emb) has no grad: its gradient is 0
    grads = {k: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
             for k, p in m.named_parameters()}
    pred = torch.stack([p.detach() for p in preds])              # [b, B, n]
    with torch.no_grad():
        epreds, _ = m(xs, ys, cfg["b"], cfg["T"], training=False)
    eval_pred = torch.stack(epreds)
    return loss.detach(), grads, pred, eval_pred, s


def fmt(t):
    return " ".join("%.9e" % v for v in t.detach().reshape(-1).tolist())


def write_fixture(path, m, xs, ys, cfg, loss, grads, pred, eval_pred):
    c = cfg
    lines = ["looped-tf-fixture 1",
             "config d=%d n_points=%d n_positions=%d C=%d H=%d L=%d kind=%s b=%d T=%d B=%d "
             "mask=%s mask_n=%d mask_when=%s" % (
                 c["d"], c["n_points"], c["n_positions"], c["C"], c["H"], c["L"], c["kind"],
                 c["b"], c["T"], c["B"], c.get("mask", "none"), c.get("mask_n", 0),
                 c.get("mask_when", "both"))]
    if any(k in c for k in VARIANT_KEYS):   # a line of its own: the older fixtures stay as they were
        lines.append("variants loop_func=%s inject_every_block=%d no_pos_emb=%d" % (
            c.get("loop_func", "add"), c.get("inject_every_block", 0), c.get("no_pos_emb", 0)))
    if "n_classes" in c:
        lines.append("classes %d" % c["n_classes"])

    def block(name, t):
        lines.append("tensor %s %d" % (name, t.numel()))
        lines.append(fmt(t))

    for k, p in m.named_parameters():
        block(k, p)
    block("xs", xs)
    block("ys", ys)
    block("loss", loss.reshape(1))
    for k, _ in m.named_parameters():
        block("grad." + k, grads[k])
    block("pred", pred)
    block("eval_pred", eval_pred)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- checks

def flat_params(m):
    return [p for _, p in m.named_parameters()]


def fd_directional(lossfn, m, grads, eps=1e-6, seed=0):
    """Compare g.v against (L(theta+eps v) - L(theta-eps v)) / 2eps for a random v."""
    g = torch.Generator().manual_seed(seed)
    params = flat_params(m)
    vs = [torch.randn(p.shape, generator=g) for p in params]
    gv = sum((grads[k] * v).sum() for (k, _), v in zip(m.named_parameters(), vs)).item()
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, p0, v in zip(params, saved, vs):
            p.copy_(p0 + eps * v)
        lp = lossfn().item()
        for p, p0, v in zip(params, saved, vs):
            p.copy_(p0 - eps * v)
        lm = lossfn().item()
        for p, p0 in zip(params, saved):
            p.copy_(p0)  # restore exactly
    fd = (lp - lm) / (2 * eps)
    return gv, fd


def fd_entries(lossfn, m, grads, per_param=3, eps=1e-6, seed=1):
    """Per-entry central differences on a few random entries of every parameter."""
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for k, p in m.named_parameters():
        flat = p.data.view(-1)
        gflat = grads[k].view(-1)
        for _ in range(per_param):
            i = int(torch.randint(flat.numel(), (1,), generator=g))
            old = flat[i].item()
            with torch.no_grad():
                flat[i] = old + eps
                lp = lossfn().item()
                flat[i] = old - eps
                lm = lossfn().item()
                flat[i] = old
            fd = (lp - lm) / (2 * eps)
            # relative error, with an absolute floor for tiny entries (FD roundoff ~1e-10)
            err = abs(fd - gflat[i].item()) / max(1e-3, abs(gflat[i].item()))
            worst = max(worst, err)
    return worst


def window_loss_from_const(m, xs, ys, Ys, s, b, mask):
    """Loss of iterations s..b-1 started from a given constant state Ys."""
    E = m._read_in(combine(xs, ys))
    Y = Ys
    preds = []
    for t in range(s, b):
        Yin = Y if mask is None else Y * mask
        Y = m._backbone(Yin + E)
        preds.append(m.readout(Y))
    return (torch.stack(preds) - ys.unsqueeze(0)).square().mean()


def check(ok, msg):
    print(("  ok   " if ok else "  FAIL ") + msg)
    if not ok:
        raise SystemExit("self-check failed: " + msg)


def self_checks():
    print("self-checks (float64):")
    # building blocks against torch's own versions
    x = torch.randn(2, 7, 16)
    check(torch.allclose(gelu_tanh(x), torch.nn.functional.gelu(x, approximate="tanh"),
                         atol=1e-14), "gelu tanh form == F.gelu(approximate='tanh')")
    att = Attention(16, 2).double()
    q, k, v = att.c_attn(x).split(16, dim=2)
    sh = lambda t: t.view(2, 7, 2, 8).transpose(1, 2)
    y = torch.nn.functional.scaled_dot_product_attention(sh(q), sh(k), sh(v), is_causal=True)
    y = att.c_proj(y.transpose(1, 2).reshape(2, 7, 16))
    check(torch.allclose(att(x), y, atol=1e-12), "explicit causal attention == SDPA(is_causal)")

    # 1. full gradient, no truncation (looped L=2, b=T=4), the standard model, and the variants
    #    that do not truncate (looped_mul and looped_nopos truncate: the C tests' FD covers them)
    for name in ("looped_L2", "standard", "standard_every", "tied", "looped_cls3"):
        cfg = dict(CASES)[name]
        m, xs, ys = build(cfg)
        loss, grads, _, _, s = compute(m, xs, ys, cfg)
        lossfn = lambda: m.train_loss(xs, ys, cfg["b"], cfg["T"])[0]
        gv, fd = fd_directional(lossfn, m, grads)
        check(abs(gv - fd) <= 1e-7 * max(1.0, abs(fd)),
              "%s: directional FD %.10e vs grad %.10e" % (name, fd, gv))
        w = fd_entries(lossfn, m, grads)
        check(w < 1e-6, "%s: per-entry FD worst rel err %.2e" % (name, w))

    # 2. truncation (looped b=5, T=3, s=2) and masks
    for name in ("looped", "looped_last2", "looped_first2"):
        cfg = dict(CASES)[name]
        m, xs, ys = build(cfg)
        loss, grads, pred, eval_pred, s = compute(m, xs, ys, cfg)
        check(s == 2, "%s: s = %d" % (name, s))
        mask = m._mask_for(cfg["n_points"], True, xs)
        # Y_s with the current weights, then frozen as a constant
        with torch.no_grad():
            E = m._read_in(combine(xs, ys))
            Y = torch.zeros_like(E)
            for t in range(s):
                Y = m._backbone((Y if mask is None else Y * mask) + E)
        Ys = Y.clone()
        lc = window_loss_from_const(m, xs, ys, Ys, s, cfg["b"], mask)
        check(abs(lc.item() - loss.item()) < 1e-13, "%s: loss == window loss from constant Y_s" % name)
        lossfn = lambda: window_loss_from_const(m, xs, ys, Ys, s, cfg["b"], mask)
        gv, fd = fd_directional(lossfn, m, grads)
        check(abs(gv - fd) <= 1e-7 * max(1.0, abs(fd)),
              "%s: truncated grad vs FD with constant Y_s: %.10e vs %.10e" % (name, gv, fd))
        w = fd_entries(lossfn, m, grads)
        check(w < 1e-6, "%s: per-entry FD (constant Y_s) worst rel err %.2e" % (name, w))
        # the truncation matters: the untruncated gradient of the same window loss differs
        m.zero_grad(set_to_none=True)
        full = m.forward(xs, ys, cfg["b"], cfg["b"], training=True)[0]
        (torch.stack(full[s:]) - ys.unsqueeze(0)).square().mean().backward()
        diff = max((p.grad - grads[k]).abs().max().item() for k, p in m.named_parameters())
        check(diff > 1e-6, "%s: full-backprop grad differs from truncated (max diff %.2e)" % (name, diff))
        # predictions of the no-grad iterations equal those of a fully tracked run
        check(torch.allclose(torch.stack([p.detach() for p in full]), pred, atol=1e-14, rtol=0),
              "%s: pred identical with and without gradient" % name)
        if mask is not None:
            # masked tokens of the carried state get zero gradient
            Yl = Ys.clone().requires_grad_(True)
            window_loss_from_const(m, xs, ys, Yl, s, cfg["b"], mask).backward()
            gz = (Yl.grad * (1 - mask)).abs().max().item()
            gk = (Yl.grad * mask).abs().max().item()
            check(gz == 0.0 and gk > 0, "%s: dL/dY_s zero at masked tokens (%.1e), nonzero kept (%.1e)"
                  % (name, gz, gk))
            m.mask = "none"
            with torch.no_grad():
                unm = torch.stack(m.forward(xs, ys, cfg["b"], cfg["T"], training=True)[0])
            m.mask = cfg["mask"]
            check((unm - pred)[1:].abs().max().item() > 1e-6 and (unm[0] - pred[0]).abs().max() == 0,
                  "%s: mask changes iterations >= 2, not iteration 1" % name)
        if cfg.get("mask_when") == "train":
            check((eval_pred - pred).abs().max().item() > 1e-6, "%s: eval_pred (unmasked) != pred" % name)
        else:
            check(torch.equal(eval_pred, pred), "%s: eval_pred == pred" % name)


def main():
    if "--no-check" not in sys.argv:
        self_checks()
    os.makedirs(OUTDIR, exist_ok=True)
    for name, cfg in CASES:
        m, xs, ys = build(cfg)
        loss, grads, pred, eval_pred, s = compute(m, xs, ys, cfg)
        path = os.path.join(OUTDIR, name + ".txt")
        write_fixture(path, m, xs, ys, cfg, loss, grads, pred, eval_pred)
        gnorm = sum(g.square().sum() for g in grads.values()).sqrt().item()
        print("%-14s kind=%-8s L=%d b=%d T=%d s=%d mask=%s/%d/%s loss=%.9e |grad|=%.6e "
              "last eval_pred[0,0]=%.6e  %d bytes" % (
                  name, cfg["kind"], cfg["L"], cfg["b"], cfg["T"], s, cfg.get("mask", "none"),
                  cfg.get("mask_n", 0), cfg.get("mask_when", "both"), loss.item(), gnorm,
                  eval_pred[-1, 0, 0].reshape(-1)[0].item(), os.path.getsize(path)))


if __name__ == "__main__":
    main()
