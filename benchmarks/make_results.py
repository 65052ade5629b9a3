"""Rebuild the tables in ``benchmarks/RESULTS.md`` from the benchmarks' JSON files.

Each table sits between ``<!-- table:NAME -->`` and ``<!-- end:NAME -->``; this script rewrites what is between
the markers from the JSON the benchmark wrote, so every figure in a table is the figure in its JSON. Tables whose
JSON is missing are left as they are.

    .venv/bin/python benchmarks/make_results.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(name: str) -> dict | None:
    path = HERE / name
    return json.loads(path.read_text()) if path.exists() else None


def speed(data: dict) -> str | None:
    if any("s_per_step" in e["reference"] for e in data["models"].values()):
        return None  # written before the reference was batched per R: run the benchmark again
    rows = ["| model | R | reference s/step | pez s/step | speed-up | rounds | whole-vocab reference s/step | "
            "run s (steps): reference / pez |", "|---|---:|---:|---:|---:|---|---:|---|"]  # fmt: skip
    for name, entry in data["models"].items():
        for r, ref in entry["reference"].items():
            mine = entry["pez"][r]
            whole = entry.get("reference_whole_vocab", {}).get(r)
            speedup = mine["prompt_steps_per_s"] / ref["prompt_steps_per_s"]
            whole_cell = f" {whole['s_per_step']:.4f}" if whole else ""
            rounds = mine.get("round_speedups") or []
            spread = f"{min(rounds):.2f}-{max(rounds):.2f}x ({len(rounds)})" if rounds else ""
            rows.append(
                f"| {name} | {r} | {ref['s_per_step']:.4f} | {mine['s_per_step']:.4f} | **{speedup:.2f}x** | {spread} |"
                f"{whole_cell} | {ref['run_s']:.1f} ({ref['steps_run']}) / {mine['run_s']:.1f} ({mine['steps_run']}) |"
            )
    m = data["machine"]
    others = [x["other_cores"] for e in data["models"].values() for k in ("reference", "pez") for x in e[k].values()]
    others = [x for x in others if x is not None]
    rows.append("")
    rows.append(
        f"Machine: {m.get('gpu') or m.get('processor')}, {m['cpu_count']} cores"
        f"{', ' + m['cpu_capability'] + ' kernels' if m.get('cpu_capability') and not m.get('gpu') else ''}"
        f"{', bf16 projection shortlist' if m.get('fast_bf16') else ''}, torch {m['torch']}, "
        f"{m['torch_threads']} threads, load average {m.get('loadavg_start')} before and {m.get('loadavg_end')} after; "
        f"other processes used at most {max(others):.2f} cores during a timing."
        if others
        else ""
    )
    return "\n".join(rows)


def folders(data: dict) -> str:
    rows = ["| batch | images | wall s | images/hour | images/hour at 3000 steps | prompt-steps/s |",
            "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in data["runs"]:
        rows.append(
            f"| {r['batch']} | {r['images']} | {r['wall_s']:.1f} | {r['images_per_hour']:.0f} | "
            f"**{r['images_per_hour_at_3000_steps']:.0f}** | {r['prompt_steps_per_s']:.1f} |"
        )
    m = data["machine"]
    rows.append("")
    rows.append(
        f"{data['model']}, {data['prompt_len']} tokens, {data['steps']} steps per image; {m['device']}, "
        f"{m['cpus']} cores, {m['torch_threads']} threads, load {m['load_before']:.2f} before and "
        f"{m['load_after']:.2f} after; model load {data['model_load_s']:.1f} s (not counted)."
    )
    return "\n".join(rows)


def lm_discover(data: dict) -> str:
    s = data["discover_summary"]
    rows = ["| prompt | held-out accuracy (mean ± std) | per seed |", "|---|---:|---|"]
    runs = data["discover"]
    rows.append(f"| empty template | {s['baseline_accuracy']['mean']:.3f} | |")
    rows.append(f"| hand-written | {s['hand_written_accuracy']['mean']:.3f} | |")
    per = ", ".join(f"{r['accuracy']:.3f}" for r in runs)
    rows.append(f"| discovered | **{s['accuracy']['mean']:.3f} ± {s['accuracy']['std']:.3f}** | {per} |")
    return "\n".join(rows)


def lm_step(data: dict) -> str:
    rows = ["| setting | prompt tokens | old path s/step | shared prompt s/step | speed-up | loss diff | grad diff |",
            "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in data["runs"]:
        rows.append(
            f"| {r['setting']} | {r['prompt_len']} | {r['each_s_per_step']:.3f} | {r['shared_s_per_step']:.3f} | "
            f"**{r['ratio_each_over_shared']:.2f}x** | {r['max_loss_diff']:.1e} | {r['max_grad_diff']:.1e} |"
        )
    return "\n".join(rows)


def compile_(data: dict) -> str:
    rows = ["| R | first 3 steps, eager / compiled (s) | eager ms/step | compiled ms/step | eager / compiled |",
            "|---:|---|---:|---:|---:|"]  # fmt: skip
    for r in data["runs"]:
        first, med = r["first_3_steps_s"], r["s_per_step"]
        rows.append(
            f"| {r['restarts']} | {first['eager']:.1f} / {first['compiled']:.1f} | {med['eager'] * 1000:.1f} | "
            f"{med['compiled'] * 1000:.1f} | **{r['eager_over_compiled']:.2f}x** |"
        )
    m = data["machine"]
    rows.append("")
    rows.append(
        f"{data['model']}, prompt length {data['prompt_len']}, median of {data['rounds']} alternating rounds of "
        f"{data['steps']} steps; {m['processor']}, {m['cpu_count']} cores, {m['cpu_capability']} kernels, torch "
        f"{m['torch']}, load average {m['loadavg_start']} before and {m['loadavg_end']} after."
    )
    return "\n".join(rows)


def api(data: dict) -> str:
    a, f = data["agreement"], data["search"]
    req, tok = f["requests"], f["tokens"]
    rows = [
        f'**Agreement** ({a["examples"]} test reviews, prompt "{a["prompt"]}"; scoring `{a["scoring"]}`, '
        f"from the {a['reason']}):\n",
        "| local (smollm2, float32) | through the server (Q4_1) | same prediction | requests | tokens | seconds |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {a['local_accuracy']:.3f} | {a['server_accuracy']:.3f} | **{a['same_predictions']:.0%}** | "
        f"{a['requests']} | {a['tokens']} | {a['seconds']:.0f} |",
        "",
        f"**The API inside the search** (held-out accuracy on the API model, {f['n_test']} test reviews; "
        f"{req['search']} requests and {tok['search']} tokens spent checking the server and choosing (budget "
        f"{f['budget']}: {f['stopped_by']}), {req['held_out']} requests and {tok['held_out']} tokens on the held-out "
        f"evaluation; {f['seconds'] / 60:.0f} min in all; the local search's prompt scores {f['local_accuracy']:.3f} "
        "on the same reviews locally):\n",
        "| prompt | text | API held-out accuracy |",
        "|---|---|---:|",
        f"| API-chosen | `{f['prompt']}` | **{f['api_accuracy']:.3f}** |",
        f"| local search alone (transfer) | `{f['local_prompt']}` | {f['transfer_accuracy']:.3f} |",
        f"| empty template | | {f['empty_template_accuracy']:.3f} |",
    ]
    for prompt, acc in (f.get("baseline_prompts") or {}).items():
        rows.append(f"| hand-written | `{prompt}` | {acc:.3f} |")
    if "readable" in data:
        rows += ["", api_readable(data["readable"])]
    return "\n".join(rows)


def api_readable(r: dict) -> str:
    """The API choosing among readable prompts (bench_api.py --parts readable)."""
    req, tok, acc, se = r["requests"], r["tokens"], r["accuracy"], r["standard_error"]
    why = r["why"].get("why", "")
    spent = r["stopped_by"] or f"not spent: every readable candidate was raced ({r['why'].get('raced')})"
    rows = [
        f"**The API choosing among readable prompts** (`--readable`, {r['args']['seconds']:g} s of local search; "
        f"held-out accuracy on the API model, {r['n_test']} test reviews, ± one standard error; {req['search']} "
        f"requests and {tok['search']} tokens choosing (budget {r['budget']}: {spent}), {req['held_out']} "
        f"requests and {tok['held_out']} tokens on the held-out evaluation; {r['seconds'] / 60:.0f} min in all; "
        f"the API's reason: {why}):\n",
        "| prompt | text | API held-out accuracy | chosen's gain (± SE) |",
        "|---|---|---:|---:|",
        f"| API-chosen (readable) | `{r['prompt']}` | **{acc['chosen']:.3f}** ± {se['chosen']:.3f} | |",
        f"| local search alone (transfer) | `{r['local_prompt']}` | {r['transfer_accuracy']:.3f} | |",
    ]
    texts = {"empty template": "", "best hand-written": r["args"].get("best_hand", "")}
    for name in ("empty template", "best hand-written"):
        if acc.get(name) is not None:
            g = r["gain"][name]
            two = "over 2 SE" if r["gain_over_two_se"][name] else "within 2 SE"
            both = f"paired; ± {g['se_independent']:.3f} independent, " if "se_independent" in g else ""
            rows.append(f"| {name} | `{texts[name]}` | {acc[name]:.3f} ± {se[name]:.3f} | "
                        f"{g['gain']:+.3f} ± {g['se']:.3f} ({both}{two}) |")  # fmt: skip
    return "\n".join(rows)


def defaults(data: dict) -> str:
    out = []
    for task, entry in data["tasks"].items():
        out.append(f"**{task}** ({entry['config']['prompt_len']} tokens, {entry['config']['steps']} steps):\n")
        out.append("| restarts | lr | final score (mean ± std) | time s | score at R=1's time | at 2x |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        for r in entry["summary"]:
            out.append(
                f"| {r['restarts']} | {r['lr']} | {r['score_mean']:.4f} ± {r['score_std']:.4f} | "
                f"{r['wall_s_mean']:.1f} | {r.get('score_at_1x_one_restart', float('nan')):.4f} | "
                f"{r.get('score_at_2x_one_restart', float('nan')):.4f} |"
            )
        out.append("")
    return "\n".join(out).rstrip()


def readable(data: dict) -> str:
    if "reference_s" not in data:  # the older format (one budget for every method)
        return None
    t = data["targets"]
    own = f"median {t['ppl_median']:.0f}, geometric mean {t['ppl_geomean']:.0f} ({t['n']} sentences)"
    out = [f"Judge: {data['judge']}; the targets' own perplexity: {own}. T: plain PEZ's seconds per prompt as "
           f"`make demo` runs it (300 steps, 4 restarts), measured in the same run; budgeted methods get "
           f"{', '.join(f'{x:g}' for x in data['scales'])} x T (setup counted).\n"]  # fmt: skip
    for length, summary in data["summary"].items():
        out.append(f"**{length} tokens** (minilm), T = {data['reference_s'][length]:.2f} s:\n")
        head = "| method | cosine (mean ± std) | perplexity median | geo. mean | dictionary words | ends mid-phrase"
        out.append(head + " | s/prompt (median) |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for name, s in summary.items():
            flag = " (judge proposed it)" if s.get("judge_is_prior") else ""
            sec = "" if s.get("seconds_median") is None else f"{s['seconds_median']:.1f}"
            out.append(
                f"| {name}{flag} | {s['cosine_mean']:.4f} ± {s['cosine_std']:.4f} | {s['ppl_median'] or 0:,.0f} | "
                f"{s['ppl_geomean'] or 0:,.0f} | {s['dictionary_share']:.0%} | {s['mid_phrase_share']:.0%} | {sec} |"
            )
        aim = data["aim"][length]
        if "fidelity_met" in aim:
            out.append(
                f"\nThe aim (readable mode at 1 x T): cosine {aim['readable_cosine']:.4f} against plain PEZ's "
                f"{aim['pez_cosine']:.4f} (within 0.02: {'met' if aim['fidelity_met'] else 'not met'}); median "
                f"perplexity {aim['readable_ppl_median']:.0f} against the person's {aim['person_ppl_median']:.0f} "
                f"({'met' if aim['perplexity_met'] else 'not met'}); ends mid-phrase "
                f"{aim['readable_mid_phrase_share']:.0%} (at most 1 in 12: "
                f"{'met' if aim['mid_phrase_met'] else 'not met'})."
            )
        if "time_met" in aim:
            out.append(
                f"Readable mode at its own defaults: {aim['readable_default_s_median']:.1f} s per prompt (median) "
                f"against T = {aim['pez_s_median']:.1f} s ({'met' if aim['time_met'] else 'not met'}), cosine "
                f"{aim['readable_default_cosine']:.4f}, median perplexity {aim['readable_default_ppl_median']:.0f}."
            )
        out.append("")
    return "\n".join(out).rstrip()


def compression(data: dict) -> str:
    from bench_compression import markdown  # the benchmark's own table, beside this file

    s = data["settings"]
    head = (f"K = {', '.join(map(str, s['ks']))}; {s['steps']} LoRA steps per gist model; {s['instructions']} "
            f"instructions per split, {s['inputs']} held-out inputs each; {data['data']}; "
            f"{data['elapsed_s'] / 60:.0f} min on {data['machine']['device']} "
            f"(load average {data['machine']['loadavg_start']} at the start).\n")  # fmt: skip
    return head + "\n" + markdown(data)


def readable_tasks(data: dict) -> str:
    from bench_readable_tasks import markdown  # the benchmark's own table, beside this file

    return markdown(data)


def bad_inputs(data: dict) -> str:
    kinds = ["handled", "accepted", "traceback", "other", "timeout"]
    head = (f"{data['started']}, {data['seconds'] / 60:.0f} min on {data['machine']['cpus']} CPU cores"
            f"{'' if data['complete'] else ' (cut short: not every case ran)'}.\n")  # fmt: skip
    out = [head, "| command | tried | " + " | ".join(kinds) + " |", "|---|" + "---:|" * (len(kinds) + 1)]
    rows = {**data["summary"]["by_command"], "**total**": data["summary"]["total"]}
    out += [f"| {cmd} | {v['tried']} | " + " | ".join(str(v[k]) for k in kinds) + " |" for cmd, v in rows.items()]
    misses = [c for c in data["cases"] if c["outcome"] != "handled"]
    if misses:
        out.append("\nNot handled:\n")
        for c in misses:
            last = (c.get("stderr_tail") or [""])[-1][:100].replace("|", "/")
            out.append(f"- `{c['command']}` ({c['outcome']}, exit {c['exit_code']}): {c['expect']}; stderr: {last}")
    return "\n".join(out)


def time_quality(data: dict) -> str:
    s = data["settings"]
    budgets = s["pez_seconds"] if isinstance(s["pez_seconds"], list) else [s["pez_seconds"]]
    seeds = len({run["seed"] for run in data["targets"][0]["pez"]})
    head = (f"{s['model']}, {s['prompt_len']} tokens, {len(data['targets'])} planted targets x {seeds} pez seeds; "
            f"pez {s['pez']}, one run per seed under each budget of {', '.join(f'{b:g}' for b in budgets)} s (a "
            f"seed's time to a score: the earliest over its runs); {data['machine']['cpus']} CPU cores, "
            f"{data['machine']['device']}.\n")  # fmt: skip
    out = [head, "| reference steps | its honest score (mean) | its seconds (mean) | pez reached it | pez seconds "
           "(median) | ratio median (min-max) | every run above it at a budget of | ratio there (fastest reference) |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in data["summary"]:
        ratio = "-" if r["ratio_median"] is None else (
            f"{r['ratio_median']:.1f}x ({r['ratio_min']:.1f}-{r['ratio_max']:.1f})")  # fmt: skip
        secs = "-" if r["pez_seconds_median"] is None else f"{r['pez_seconds_median']:.1f}"
        budget = r.get("every_run_budget_s")
        fixed = "- | -" if budget is None else f"{budget:g} s | **{r['every_run_ratio']:.1f}x**"
        out.append(f"| {r['ref_steps']} | {r['ref_score_mean']:.4f} | {r['ref_seconds_mean']:.0f} | "
                   f"{r['pez_reached']}/{r['pez_runs']} | {secs} | {ratio} | {fixed} |")  # fmt: skip
    return "\n".join(out)


def polish(data: dict) -> str:
    s = data["settings"]
    head = (
        f"{s['model']}, {s['prompt_len']} tokens, {len({r['target'] for r in data['runs']})} sentences x "
        f"{s['seeds']} seeds, one `pez.invert` call per budget and setting; {data['machine']['cpus']} CPU cores.\n"
    )
    out = [head, "| budget | PEZ alone (mean) | PEZ + polish (mean) | gain (paired mean ± SE) | won / lost / pairs | "
           "seconds per call (alone, polish) |", "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in data["summary"]:
        se = "" if r["gain_se"] is None else f" ± {r['gain_se']:.4f}"
        out.append(f"| {r['budget_s']:g} s | {r['alone_mean']:.4f} | {r['polish_mean']:.4f} | "
                   f"**{r['gain_mean']:+.4f}**{se} | {r['won']} / {r['lost']} / {r['pairs']} | "
                   f"{r['alone_wall_s']:.1f}, {r['polish_wall_s']:.1f} |")  # fmt: skip
    return "\n".join(out)


def stop(data: dict) -> str:
    out = []
    for task, entry in data["tasks"].items():
        c = entry["config"]
        out.append(f"**{task}** ({c.get('prompt_len', '?')} tokens, {c['steps']} steps, {len(entry['runs'])} runs):\n")
        out.append("| patience | min delta | loss mean | loss max | time saved | seconds saved | runs stopped |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|")
        for r in entry["summary"]:
            out.append(f"| {r['patience']} | {r['min_delta']} | {r['loss_mean']:.4f} | {r['loss_max']:.4f} | "
                       f"{r['time_saved_share']:.0%} | {r['seconds_saved_mean']:.1f} | "
                       f"{r['stopped_runs']}/{r['runs']} |")  # fmt: skip
        out.append("")
    return "\n".join(out).rstrip()


TABLES = {
    "time-quality": ("results_time_quality.json", time_quality),
    "polish": ("results_polish.json", polish),
    "stop": ("results_stop.json", stop),
    "bad-inputs": ("results_bad_inputs.json", bad_inputs),
    "readable-tasks": ("results_readable_tasks.json", readable_tasks),
    "readable": ("results_readable.json", readable),
    "compression": ("results_compression.json", compression),
    "speed-cpu": ("results_speed.json", speed),
    "speed-cuda": ("results_speed_cuda.json", speed),
    "folders-cpu": ("results_folders.json", folders),
    "folders-cuda": ("results_folders_cuda.json", folders),
    "lm-discover": ("results_lm_discover.json", lm_discover),
    "lm-step": ("results_lm_step.json", lm_step),
    "defaults": ("results_defaults.json", defaults),
    "api": ("results_api.json", api),
    "compile": ("results_compile.json", compile_),
}


def main() -> None:
    """Rewrite every table whose JSON exists."""
    path = HERE / "RESULTS.md"
    text = path.read_text()
    for name, (source, render) in TABLES.items():
        data = load(source)
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- end:{name} -->)", re.S)
        if data is None or not pattern.search(text):
            continue
        table = render(data)
        if table is None:
            print(f"{name}: {source} is from an older version of its benchmark; left as it was")
            continue
        text = pattern.sub(lambda m, table=table: m[1] + table + "\n" + m[2], text)
        print(f"{name}: from {source}")
    path.write_text(text)


if __name__ == "__main__":
    main()
