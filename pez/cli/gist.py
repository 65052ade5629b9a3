"""``pez gist``: train a gist model, compress an instruction into a gist file, generate or score after it, and
compare gisting with the full instruction, ``pez compress``, prompt tuning and no instruction."""

from __future__ import annotations

import argparse
import sys

from pez.cli.options import (
    Parser,
    ProgressBar,
    add_device_option,
    check_output_dir,
    check_output_file,
    quiet_libraries,
)
from pez.errors import PezError


def add_parser(sub) -> None:
    p = sub.add_parser("gist", help="gist tokens: compress instructions into K fine-tuned tokens (Mu et al. 2023)")
    gist = p.add_subparsers(dest="gist_command", required=True, parser_class=Parser)

    t = gist.add_parser("train", help="fine-tune a causal LM with K gist tokens and the gist attention mask")
    t.add_argument("--model", default="smollm2", help="base model: smollm2, a transformers folder or hub name")
    t.add_argument("--data", metavar="FILE", help="JSONL: instruction, input, output (default: the embedded set)")
    t.add_argument("--gist-tokens", type=int, default=1, metavar="K", help="gist tokens per instruction (1)")
    t.add_argument("--steps", type=int, default=200, metavar="N", help="training steps (200)")
    t.add_argument("--out", required=True, metavar="DIR", help="folder for the gist model (and its checkpoint)")
    t.add_argument("--lora", action="store_true", help="LoRA through PEFT instead of full fine-tuning")
    t.add_argument("--lora-rank", type=int, metavar="R", help="LoRA rank (16; with --lora)")
    t.add_argument("--lr", type=float, metavar="LR", help="AdamW learning rate (5e-5 full, 1e-3 LoRA)")
    t.add_argument("--batch-size", type=int, default=8, metavar="N", help="examples per step (8)")
    t.add_argument("--eval-every", type=int, default=25, metavar="N", help="steps between held-out losses (25)")
    t.add_argument("--checkpoint-every", type=int, default=50, metavar="N", help="steps between checkpoints (50)")
    t.add_argument("--held-out", type=float, default=0.1, metavar="F", help="fraction of --data held out (0.1)")
    t.add_argument("--seed", type=int, default=0, help="seed of the batches (0)")
    t.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_option(t)
    t.set_defaults(run=run_train)

    c = gist.add_parser("compress", help="one forward pass: an instruction -> its gist keys and values (a file)")
    c.add_argument("--model", required=True, metavar="DIR", help="a gist model folder (pez gist train)")
    c.add_argument("--instruction", required=True, metavar="TEXT", help="the instruction to compress")
    c.add_argument("--out", required=True, metavar="FILE", help="the gist file to write (e.g. gist.pt)")
    add_device_option(c)
    c.set_defaults(run=run_compress)

    g = gist.add_parser("generate", help="the gist model's output for an input after a gist file")
    g.add_argument("--model", required=True, metavar="DIR", help="the gist model the file was made with")
    g.add_argument("--gist", required=True, metavar="FILE", help="a gist file (pez gist compress)")
    g.add_argument("--input", default="", metavar="TEXT",
                   help="the input (empty only for a model trained on rows without one)")  # fmt: skip
    g.add_argument("--max-new-tokens", type=int, default=64, metavar="N", help="most tokens to generate (64)")
    add_device_option(g)
    g.set_defaults(run=run_generate)

    e = gist.add_parser("evaluate", help="score outputs after a gist file: NLL, and accuracy where rows have choices")
    e.add_argument("--model", required=True, metavar="DIR", help="the gist model the file was made with")
    e.add_argument("--gist", required=True, metavar="FILE", help="a gist file (pez gist compress)")
    e.add_argument("--data", required=True, metavar="FILE", help="JSONL: input, output (and choices) rows")
    e.add_argument("--out", metavar="FILE", help="write the result as JSON")
    add_device_option(e)
    e.set_defaults(run=run_evaluate)

    m = gist.add_parser("compare", help="instruction vs hard prompt vs gist vs prompt tuning vs none, same inputs")
    m.add_argument("--model", required=True, metavar="DIR", help="a gist model folder (its K is compared)")
    m.add_argument("--base-model", metavar="M", help="the base model (default: the gist model's, from gist.json)")
    m.add_argument("--data", metavar="FILE", help="held-out JSONL rows (default: the embedded set's held-out part)")
    m.add_argument("--methods", default="instruction,hard-prompt,gist,prompt-tuning,none", help="comma-separated")
    m.add_argument("--instructions", type=int, default=2, metavar="N", help="instructions per split (2)")
    m.add_argument("--inputs", type=int, default=8, metavar="N", help="held-out inputs per instruction (8)")
    m.add_argument("--train-inputs", type=int, default=16, metavar="N", help="inputs that train the prompts (16)")
    m.add_argument("--hard-steps", type=int, default=20, metavar="N", help="pez compress steps (20)")
    m.add_argument("--tuning-steps", type=int, default=30, metavar="N", help="prompt tuning steps (30)")
    m.add_argument("--batch-size", type=int, default=8, metavar="N", help="rows per optimisation step (8)")
    m.add_argument("--seed", type=int, default=0, help="seed (0)")
    m.add_argument("--out", metavar="FILE", help="write the comparison as JSON")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_option(m)
    m.set_defaults(run=run_compare)


def run_train(args: argparse.Namespace) -> int:
    from pez.gist import gist_train

    check_output_dir(args.out, "--out")
    if args.lora_rank is not None and not args.lora:
        raise PezError("--lora-rank sets the rank of LoRA: add --lora, or leave --lora-rank out")
    quiet_libraries()
    with ProgressBar(args.quiet, "gist", "step") as bar:

        def progress(p) -> None:
            held = f" | held-out {p.held_out_loss:.3f}" if p.held_out_loss is not None else ""
            bar(p.step, p.steps, f"loss {p.loss:.3f}{held}")

        report = gist_train(
            model=args.model,
            data=args.data,
            k=args.gist_tokens,
            steps=args.steps,
            out=args.out,
            lora=args.lora,
            lora_rank=16 if args.lora_rank is None else args.lora_rank,
            lr=args.lr,
            batch_size=args.batch_size,
            eval_every=args.eval_every,
            checkpoint_every=args.checkpoint_every,
            held_out=args.held_out,
            seed=args.seed,
            resume=args.resume,
            device=args.device,
            callback=progress,
        )
    print(report.out)
    print(report.summary(), file=sys.stderr)
    return 0


def run_compress(args: argparse.Namespace) -> int:
    from pez.gist import gist_compress

    check_output_file(args.out, "--out")
    quiet_libraries()
    cache = gist_compress(args.model, args.instruction, out=args.out, device=args.device)
    print(f"{cache.n_instruction} instruction tokens -> {cache.k} gist tokens; saved to {args.out}", file=sys.stderr)
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from pez.gist import gist_generate

    quiet_libraries()
    print(gist_generate(args.model, args.gist, args.input, args.max_new_tokens, device=args.device))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from pez.gist import gist_evaluate

    check_output_file(args.out, "--out")
    quiet_libraries()
    result = gist_evaluate(args.model, args.gist, args.data, device=args.device)
    print(result.summary())
    if args.out:
        result.save(args.out)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from pez.gist import compare_compression

    check_output_file(args.out, "--out")
    quiet_libraries()
    with ProgressBar(args.quiet, "compare", "run") as bar:
        result = compare_compression(
            args.model,
            data=args.data,
            base_model=args.base_model,
            methods=[m.strip() for m in args.methods.split(",") if m.strip()],
            instructions=args.instructions,
            inputs=args.inputs,
            train_inputs=args.train_inputs,
            hard_steps=args.hard_steps,
            tuning_steps=args.tuning_steps,
            batch_size=args.batch_size,
            seed=args.seed,
            device=args.device,
            callback=bar,
        )
    print(result.summary())
    if args.out:
        result.save(args.out)
    return 0
