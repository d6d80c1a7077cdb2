"""Cross-check a looped-tf checkpoint against the PyTorch reference.

Usage: python3 reference/check_checkpoint.py CHECKPOINT [PROMPT]
  CHECKPOINT  a .safetensors file written by ltf_checkpoint_save
  PROMPT      text file (default CHECKPOINT.prompt) written by test.c:
                looped-tf-prompt 1
                B n d loops
                xs   (B*n*d numbers)
                ys   (B*n numbers)
                pred (B*n numbers: ltf_predict's last-iteration predictions)

Loads the file with safetensors.torch.load_file, builds LoopedTF (looped_tf_ref.py) from the
config in its __metadata__, load_state_dict(strict=True) after dropping the "optim." keys (Adam
state), predicts in float64 in eval mode and compares with the C predictions.
Exit 0 iff max |pred_c - pred_ref| / max |pred_ref| < 1e-4; 1 otherwise; 77 when torch or
safetensors is not installed (test.c reports the test as skipped).
"""
import os
import sys

try:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
except ImportError as e:
    print("  check_checkpoint.py: %s" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from looped_tf_ref import LoopedTF  # noqa: E402

TOL = 1e-4
MASK_MODE = {0: "none", 1: "last", 2: "first"}
MASK_WHEN = {1: "train", 2: "eval", 3: "both"}


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__)
        return 2
    path = argv[1]
    prompt = argv[2] if len(argv) == 3 else path + ".prompt"
    for name, what in ((path, "CHECKPOINT"), (prompt, "PROMPT")):
        if not os.path.isfile(name):
            print("check_checkpoint.py: %s %s: no such file%s" % (what, name,
                  " (test.c writes CHECKPOINT.prompt next to the checkpoints it checks; give PROMPT"
                  " as the second argument otherwise)" if what == "PROMPT" else ""))
            return 2
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    if meta.get("format") != "looped-tf" or meta.get("format_version") != "1":
        print("  %s: metadata format %r version %r" % (path, meta.get("format"), meta.get("format_version")))
        return 1
    cfg = {k: int(meta[k]) for k in ("n_dims", "n_positions", "n_embd", "n_head", "n_layer", "kind",
                                     "n_loops", "loop_window", "mask_mode", "mask_pairs", "mask_when")}
    for k in ("loop_func", "inject_every_block", "no_pos_emb", "n_classes"):   # absent in older files: 0
        cfg[k] = int(meta.get(k, "0"))
    tensors = load_file(path)
    params = {k: v for k, v in tensors.items() if not k.startswith("optim.")}
    optim = {k: v for k, v in tensors.items() if k.startswith("optim.")}
    if "step" in meta:   # a train state: Adam m and v for every parameter, same shapes
        for k, v in params.items():
            for p in ("optim.exp_avg.", "optim.exp_avg_sq."):
                if p + k not in optim or optim[p + k].shape != v.shape:
                    print("  %s: %s%s missing or of the wrong shape" % (path, p, k))
                    return 1
        if len(optim) != 2 * len(params):
            print("  %s: %d optim tensors for %d parameters" % (path, len(optim), len(params)))
            return 1

    model = LoopedTF(cfg["n_dims"], cfg["n_positions"], cfg["n_embd"], cfg["n_head"], cfg["n_layer"],
                     {0: "standard", 1: "looped", 2: "tied"}[cfg["kind"]],
                     MASK_MODE[cfg["mask_mode"]], cfg["mask_pairs"], MASK_WHEN.get(cfg["mask_when"], "both"),
                     "mul" if cfg["loop_func"] == 1 else "add", bool(cfg["inject_every_block"]),
                     bool(cfg["no_pos_emb"]), cfg["n_classes"])
    model = model.double()
    model.load_state_dict(params, strict=True)
    model.eval()

    with open(prompt) as f:
        lines = f.read().split("\n")
    if lines[0].strip() != "looped-tf-prompt 1":
        print("  %s: not a looped-tf prompt file" % prompt)
        return 2
    B, n, d, loops = (int(v) for v in lines[1].split())
    xs = torch.tensor([float(v) for v in lines[2].split()], dtype=torch.float64).view(B, n, d)
    ys = torch.tensor([float(v) for v in lines[3].split()], dtype=torch.float64).view(B, n)
    pred_c = torch.tensor([float(v) for v in lines[4].split()], dtype=torch.float64)
    pred_c = pred_c.view(B, n, cfg["n_classes"]) if cfg["n_classes"] else pred_c.view(B, n)
    with torch.no_grad():
        preds, _ = model(xs, ys, b=cfg["n_loops"] if cfg["kind"] == 2 else loops, training=False)
    ref = preds[-1]
    err = ((pred_c - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
    ok = err < TOL
    print("  PyTorch (safetensors + strict load_state_dict, %d tensors, %d optim): max rel err %.2e %s"
          % (len(params), len(optim), err, "ok" if ok else "FAIL (want < %g)" % TOL))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
