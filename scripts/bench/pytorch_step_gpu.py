#!/usr/bin/env python3
"""Time one full PyTorch training step on a CUDA GPU: the reference for `dp-train bench --backend cuda`.

The step is scripts/bench/pytorch_step.py's (forward, masked mean pooling, Linear(H, 1), MSE,
backward, clip_grad_norm_(1.0), AdamW, zero_grad), run eagerly on the GPU. --precision:
    fp32  TF32 off (allow_tf32 False for matmul and cuDNN, float32 matmul precision "highest"),
          what dp-train's CUDA backend computes by default
    tf32  TF32 on for matmul and cuDNN (float32 matmul precision "high")
    bf16  TF32 off; forward and loss under torch.autocast("cuda", dtype=torch.bfloat16), so
          matmuls and attention run in bf16 with bf16 activations; master weights, gradients and
          AdamW state stay fp32 (bf16 has fp32's exponent range, so no GradScaler)
Each step's time is taken after torch.cuda.synchronize(). The FLOPs formula and the models are
pytorch_step.py's.

    python3 scripts/bench/pytorch_step_gpu.py --model bert-base --batch-size 16 --seq-len 128 --steps 10
    python3 scripts/bench/pytorch_step_gpu.py --probe --precision tf32   # the MFU denominator

The probe is the median GFLOP/s of one 8192^3 matrix product through cuBLAS: fp32 with TF32 off
(sgemm), fp32 with TF32 on, or bf16 inputs and outputs, as --precision says.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_step import build_model, flops_per_step, make_training_step  # noqa: E402


PRECISIONS = ("fp32", "tf32", "bf16")


def set_tf32(torch, precision):
    """TF32 only for tf32: cuDNN allows it by default, which would blur fp32 and bf16 runs."""
    tf32 = precision == "tf32"
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def probe(torch, precision, size=8192, repeats=20):
    """Median GFLOP/s of a size^3 matrix product on random data, timed with CUDA events."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(size, size, device="cuda", dtype=dtype)
    b = torch.randn(size, size, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model folder, bert-base or roberta-base")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (after 2 warm-up steps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", choices=PRECISIONS, default="fp32", help="see the module docstring")
    ap.add_argument("--probe", action="store_true", help="print the matrix-product probe at --precision and exit")
    args = ap.parse_args()

    import torch

    set_tf32(torch, args.precision)
    if args.probe:
        print(json.dumps({"impl": "cublas-gemm-probe", "precision": args.precision,
                          "gflops": probe(torch, args.precision),
                          "device": torch.cuda.get_device_name(), "torch": torch.__version__}), flush=True)
        return
    if args.model is None:
        ap.error("--model is required unless --probe")
    torch.manual_seed(args.seed)
    encoder = build_model(args.model).cuda()
    config = encoder.config
    hidden, layers = config.hidden_size, config.num_hidden_layers

    B, T = args.batch_size, args.seq_len
    low = 5  # never the pad id, so nothing is padding
    warmup = 2
    batches = [(torch.randint(low, config.vocab_size, (B, T), device="cuda"), torch.randn(B, device="cuda"))
               for _ in range(args.steps + warmup)]
    mask = torch.ones(B, T, dtype=torch.long, device="cuda")

    autocast = None
    if args.precision == "bf16":
        autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
    step, non_embedding = make_training_step(torch, encoder, mask, autocast)

    times = []
    for i, (input_ids, target) in enumerate(batches):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step(input_ids, target)
        torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(json.dumps({
        "impl": "pytorch-cuda-" + ("bf16-autocast" if args.precision == "bf16" else args.precision),
        "precision": args.precision, "model": args.model, "batch_size": B, "seq_len": T, "steps": args.steps,
        "median_step_s": median, "tokens_per_s": B * T / median,
        "flops_per_step": flops_per_step(non_embedding, layers, hidden, B, T), "step_times_s": times,
        "attn_implementation": getattr(config, "_attn_implementation", None),
        "device": torch.cuda.get_device_name(), "torch": torch.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
