#!/usr/bin/env python3
"""Time one full PyTorch training step, the reference that `dp-train bench` is compared with.

The step, fp32 on the CPU, model in train mode (dropout as configured):
    forward of BertModel / RobertaModel (no pooler)
    -> masked mean pooling over tokens -> Linear(H, 1) regression head -> MSE loss
    -> backward -> clip_grad_norm_(1.0) -> torch.optim.AdamW step -> zero_grad
Inputs are synthetic: B x T random token ids (never a special or pad id, so no padding),
attention mask all ones, random normal targets. One warm-up step, then the median of K steps.

--model is a model folder (config.json + model.safetensors, e.g. artifacts/models/all-MiniLM-L6-v2),
or a named random-init size:
    bert-base     BertConfig() defaults: 12 layers x 768, 12 heads, FFN 3072, vocab 30522
    roberta-base  RobertaConfig: 12 x 768, vocab 50265, max_position 514, type_vocab 1, pad 1

Prints one JSON line with median_step_s, tokens_per_s, flops_per_step, peak_rss_mb (and context).

flops_per_step (the same formula as dp-train bench and scripts/bench/step-vs-pytorch):
    6 * N * B * T  +  12 * L * B * T^2 * C
where N is the number of non-embedding parameters the step trains (every parameter outside
the `embeddings.` module: the L encoder layers plus the Linear(C, 1) head; no pooler), B the
batch, T the sequence length, L the layers and C the hidden size. 6*N per token is the
forward (2) plus backward (4) matrix work; 12*L*B*T^2*C is attention's QK^T and AV
(2 matmuls x 2*B*T^2*C forward, doubled again for backward).
peak_rss_mb = resource.getrusage(RUSAGE_SELF).ru_maxrss / 1024 (Linux reports KiB).

Example:
    python3 scripts/bench/pytorch_step.py --model bert-base --batch-size 16 --seq-len 128 --threads 1 --steps 3
"""
import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time


def build_model(name_or_dir):
    import transformers
    from transformers import AutoModel, BertConfig, BertModel, RobertaConfig, RobertaModel

    transformers.logging.set_verbosity_error()  # "pooler weights not used" is expected
    transformers.logging.disable_progress_bar()
    if name_or_dir == "bert-base":
        return BertModel(BertConfig(), add_pooling_layer=False)
    if name_or_dir == "roberta-base":
        config = RobertaConfig(vocab_size=50265, max_position_embeddings=514,
                               type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5)
        return RobertaModel(config, add_pooling_layer=False)
    if not os.path.isfile(os.path.join(name_or_dir, "config.json")):
        sys.exit(f"pytorch_step.py: --model {name_or_dir!r} is neither bert-base, roberta-base "
                 f"nor a folder with config.json")
    return AutoModel.from_pretrained(name_or_dir, add_pooling_layer=False).float()


def flops_per_step(non_embedding_params, layers, hidden, batch, seq):
    """6 * N * B * T + 12 * L * B * T^2 * C (see the module docstring)."""
    return 6 * non_embedding_params * batch * seq + 12 * layers * batch * seq * seq * hidden


def make_training_step(torch, encoder, mask, autocast=None):
    """dp-train bench's step in PyTorch: mean pooling over `mask`, a fresh 1-output MSE head,
    clipping at 1 and AdamW (lr 2e-5, eps 1e-6, decay 0.01). Returns the step (input_ids,
    target -> loss tensor) and the non-embedding parameter count for flops_per_step. `autocast`,
    when given, makes the context that the forward and the loss run in."""
    head = torch.nn.Linear(encoder.config.hidden_size, 1).to(mask.device)
    encoder.train()
    head.train()
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=2e-5, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)
    non_embedding = sum(p.numel() for n, p in encoder.named_parameters() if not n.startswith("embeddings."))
    non_embedding += sum(p.numel() for p in head.parameters())

    def step(input_ids, target):
        with autocast() if autocast else contextlib.nullcontext():
            hidden_states = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden_states.dtype)                 # (B, T, 1)
            pooled = (hidden_states * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, C)
            loss = torch.nn.functional.mse_loss(head(pooled).squeeze(-1), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step, non_embedding


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model folder, bert-base or roberta-base")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after 1 warm-up)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if min(args.batch_size, args.seq_len, args.threads, args.steps) < 1:
        ap.error("--batch-size, --seq-len, --threads and --steps must be >= 1")

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    encoder = build_model(args.model)
    config = encoder.config
    if args.seq_len > config.max_position_embeddings - (2 if config.model_type == "roberta" else 0):
        sys.exit(f"pytorch_step.py: --seq-len {args.seq_len} exceeds the model's positions")
    hidden, layers = config.hidden_size, config.num_hidden_layers

    B, T = args.batch_size, args.seq_len
    low = 5  # never the pad id (BERT 0, RoBERTa 1), so nothing is padding
    batches = [(torch.randint(low, config.vocab_size, (B, T)), torch.randn(B))
               for _ in range(args.steps + 1)]
    mask = torch.ones(B, T, dtype=torch.long)

    step, non_embedding = make_training_step(torch, encoder, mask)

    times, losses = [], []
    for i, (input_ids, target) in enumerate(batches):
        t0 = time.perf_counter()
        loss = step(input_ids, target).item()
        dt = time.perf_counter() - t0
        if i > 0:  # step 0 is the warm-up
            times.append(dt)
            losses.append(loss)

    median = statistics.median(times)
    flops = flops_per_step(non_embedding, layers, hidden, B, T)
    print(json.dumps({
        "impl": "pytorch",
        "model": args.model,
        "batch_size": B,
        "seq_len": T,
        "threads": args.threads,
        "steps": args.steps,
        "median_step_s": median,
        "tokens_per_s": B * T / median,
        "flops_per_step": flops,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "step_times_s": times,
        "losses": losses,
        "non_embedding_params": non_embedding,
        "layers": layers,
        "hidden": hidden,
        "attn_implementation": getattr(config, "_attn_implementation", None),
        "torch": torch.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
