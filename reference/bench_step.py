"""Times one PyTorch training step of docs/MATH.md (forward over b loops, backward over the last T,
Adam), for `demo bench --compare`.

Usage: python3 reference/bench_step.py d n C H L b T B runs warmup threads [fp32|tf32|bf16] [cpu|cuda]
bf16: the forward and the loss under torch.autocast(device, dtype=torch.bfloat16) (the Linear
layers' matrix multiplies in bfloat16, as demo's --precision bf16; the parameters and Adam stay
float32). tf32 (cuda only): float32 matrix multiplies on tensor cores (allow_tf32), as demo's
--precision tf32 on the GPU. cuda: model, data and optimizer on the GPU, each step timed between
two torch.cuda.synchronize() calls (eager mode, no CUDA graph: the paper's code as it runs).
Prints one line: "pytorch <torch version> median_ms <m> min_ms <m> runs <r>"; exit 77 when torch
(or, for cuda, the GPU) is missing.
The model is looped_tf_ref.LoopedTF (float32, the paper's initialisation) with PyTorch's fused
kernels swapped in for the reference's explicit formulas (same math): scaled_dot_product_attention
for the causal attention and F.gelu(approximate="tanh") for GELU.
"""
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print("bench_step.py: %s" % e)
    sys.exit(77)

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import looped_tf_ref as ref  # noqa: E402


def fast_attention_forward(self, x):
    """Same math as ref.Attention.forward (causal softmax attention), through SDPA."""
    B, N, C = x.shape
    q, k, v = self.c_attn(x).split(C, dim=2)
    hs = C // self.H
    q, k, v = (t.view(B, N, self.H, hs).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return self.c_proj(y.transpose(1, 2).reshape(B, N, C))


def main(argv):
    prec = argv[12] if len(argv) > 12 else "fp32"
    dev = argv[13] if len(argv) > 13 else "cpu"
    if len(argv) not in (12, 13, 14) or prec not in ("fp32", "tf32", "bf16") or dev not in ("cpu", "cuda") \
            or (prec == "tf32" and dev != "cuda"):
        print(__doc__)
        return 2
    if dev == "cuda" and not torch.cuda.is_available():
        print("bench_step.py: torch %s sees no GPU" % torch.__version__)
        return 77
    d, n, C, H, L, b, T, B, runs, warmup, threads = (int(a) for a in argv[1:12])
    bf16 = prec == "bf16"
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"   # the model has no convolutions
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    if hasattr(F, "scaled_dot_product_attention"):
        ref.Attention.forward = fast_attention_forward
    ref.gelu_tanh = lambda x: F.gelu(x, approximate="tanh")
    kind = "looped" if b > 0 else "standard"   # b = 0: the standard model
    model = ref.LoopedTF(d, n, C, H, L, kind=kind)
    ref.init_paper(model)
    model = model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    xs = torch.randn(B, n, d).to(dev)
    ys = torch.randn(B, n).to(dev)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    times = []
    for i in range(warmup + runs):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=bf16):
            loss = model.train_loss(xs, ys, max(b, 1), max(T, 1))[0]
        loss.backward()
        opt.step()
        sync()
        t1 = time.perf_counter()
        if i >= warmup:
            times.append(1e3 * (t1 - t0))
    print("pytorch %s median_ms %.3f min_ms %.3f runs %d" % (torch.__version__, statistics.median(times), min(times), runs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
