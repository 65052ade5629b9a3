"""What a server's echoed log-probabilities mean, checked before any is trusted (docs/evaluation.md#server-check).

OpenAI's ``/completions`` with ``echo: true`` returns, for every prompt token, its log-probability under the
distribution that PRECEDES it (``null`` for the first token). Servers differ: llama-cpp-python gives each token
its log-probability under the distribution that FOLLOWS it when the model adds no BOS token (its issue #1983);
llama.cpp's ``llama-server`` returns none for the prompt (its issue #27174). Summing such values gives plausible,
wrong label scores. So, once per (base URL, model):

1. generate one token ``g`` after a probe text ``P`` (``max_tokens: 1``, greedy, ``logprobs``): its
   log-probability ``lp`` is the one generation itself used;
2. echo ``P + g`` and find the token that starts where ``g`` starts:
   - **aligned**: its echoed value equals ``lp`` (within :data:`TOLERANCE`): log-probabilities can be summed;
   - **shifted**: its value does not, but the PREVIOUS token's ``top_logprobs`` give ``g`` the value ``lp``:
     each token's true value is read from the previous token's ``top_logprobs`` (:func:`shifted_span_parts`) or,
     when it is not among them, from the ``top_logprobs`` of one token generated after the text before it;
   - anything else (no echo, missing values, no match, refused): log-probabilities are not used.

The first token's convention (``null`` as OpenAI, or a value) is recorded too. The verdict is stored in the
response cache; a refused probe is not (the model name may be wrong).
"""

from __future__ import annotations

import math

from pez.evaluation.client import COMPLETIONS, Unscorable

PROBE_TEXT = "The capital of France is"
PROBE_TOP = 5  # top_logprobs asked for in the probe
TOLERANCE = 0.1  # nats: echo and generation may run the same weights through different kernels
ALIGNED, SHIFTED = "aligned", "shifted"
USABLE = (ALIGNED, SHIFTED)


def check_server(api, model: str, recheck: bool = False) -> dict:
    """The verdict on ``model`` behind ``api`` (an :class:`~pez.evaluation.client.ApiClient`), from the cache
    when it was checked before; ``recheck`` asks the server again (the probe's cached answers are not reused).

    Returns:
        ``{"verdict": aligned | shifted | no-logprobs | no-prompt-logprobs | misaligned | inconclusive | refused,
        "reason": one line, "first_token": "null" | "value" | None, "probe": what was compared,
        "cached": bool}``.
    """
    if not recheck:
        stored = api.cache.get_check(api.root, model)
        if stored is not None:
            return stored | {"cached": True}
    verdict = _probe(api, model, fresh=recheck)
    if verdict["verdict"] != "refused":
        api.cache.put_check(api.root, model, verdict)
    return verdict | {"cached": False}


def _verdict(kind: str, reason: str, first_token: str | None = None, **probe) -> dict:
    return {"verdict": kind, "reason": reason, "first_token": first_token, "probe": probe}


def _probe(api, model: str, fresh: bool) -> dict:
    base = {"model": model, "max_tokens": 1, "temperature": 0, "logprobs": PROBE_TOP}
    try:
        generated = api.post(COMPLETIONS, base | {"prompt": PROBE_TEXT}, _generated, fresh)
    except Unscorable as e:
        return _verdict("refused", f"the server refused a /completions request with logprobs ({e})")
    if generated is None:
        return _verdict("no-logprobs", "the server's /completions answer has no token log-probabilities")
    g, lp = generated
    if not g.strip() or "\n" in g:
        return _verdict("inconclusive", f"the probe generated {g!r}, not a word to compare", generated=g)
    text = PROBE_TEXT + g
    try:
        echo = api.post(COMPLETIONS, base | {"prompt": text, "echo": True}, _echoed, fresh)
    except Unscorable as e:
        return _verdict("refused", f"the server refused echo=true ({e})", generated=g)
    facts = {"probe_text": PROBE_TEXT, "generated": g, "generated_logprob": lp}
    if echo is None:
        return _verdict("no-prompt-logprobs", "the server's echo answer has no token log-probabilities", **facts)
    tokens, values, offsets, tops = echo
    inside = [i for i, o in enumerate(offsets) if isinstance(o, int) and o < len(text)]
    if not inside or offsets[0] != 0 or "".join(tokens[i] for i in inside) != text:
        return _verdict("no-prompt-logprobs", "the server did not echo the prompt's tokens with echo=true", **facts)
    first = "null" if values[0] is None else "value"
    if not all(_number(values[i]) for i in inside[1:]):
        return _verdict(
            "no-prompt-logprobs", "the server echoes the prompt without its tokens' log-probabilities", first, **facts
        )
    if len(PROBE_TEXT) not in offsets:
        return _verdict("inconclusive", "the echoed tokens do not start where the generated token does", first, **facts)
    j = offsets.index(len(PROBE_TEXT))
    echoed = values[j]
    previous = tops[j - 1] if j > 0 and isinstance(tops[j - 1], dict) else {}
    from_top = previous.get(tokens[j])
    facts |= {"echoed_logprob": echoed, "previous_top_logprob": from_top}
    aligned = abs(echoed - lp) <= TOLERANCE
    shifted = _number(from_top) and abs(from_top - lp) <= TOLERANCE and not aligned
    if aligned:
        why = f"the echoed log-probability of {g!r} ({echoed:.3f}) equals the generated one ({lp:.3f})"
        return _verdict(ALIGNED, why, first, **facts)
    if shifted:
        why = (
            f"the echoed log-probabilities are shifted by one position: {g!r} was echoed at {echoed:.3f} but "
            f"generated at {lp:.3f}, the value the previous token's top_logprobs give it (each token gets its "
            "log-probability under the distribution that follows it, as llama-cpp-python does)"
        )
        return _verdict(SHIFTED, why, first, **facts)
    why = f"the echoed log-probability of {g!r} ({echoed:.3f}) does not match the generated one ({lp:.3f})"
    return _verdict("misaligned", why, first, **facts)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _logprobs(response: dict):
    try:
        lp = response["choices"][0]["logprobs"]
        tokens, values, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
    except (KeyError, IndexError, TypeError):
        return None
    tops = lp.get("top_logprobs") or [None] * len(tokens)
    if not all(isinstance(x, list) for x in (tokens, values, offsets, tops)):
        return None
    if not tokens or not len(tokens) == len(values) == len(offsets) == len(tops):
        return None
    return tokens, values, offsets, tops


def _generated(response: dict) -> tuple[str, float] | None:
    """The first generated token and its log-probability, or None when the answer has none."""
    lp = _logprobs(response)
    if lp is None or not isinstance(lp[0][0], str) or not _number(lp[1][0]):
        return None
    return lp[0][0], float(lp[1][0])


def _echoed(response: dict):
    return _logprobs(response)


def shifted_span_parts(response: dict, start: int, end: int) -> list[tuple[int, str, float | None]]:
    """The echoed tokens that cover characters [start, end) on a server whose echoed values are shifted by one
    (see :func:`pez.evaluation.remote.span_logprob` for which tokens count).

    Returns:
        per token: (its character offset, its text, its log-probability read from the previous token's
        ``top_logprobs``, or None when it is not among them: ask the server for the next token after the text
        before it, :func:`next_token_logprob`).

    Raises:
        Unscorable: the answer has no echoed tokens for characters [start, end), or the span starts the text.
    """
    lp = _logprobs(response)
    if lp is None:
        raise Unscorable("the API answered the logprob request without token log-probabilities")
    tokens, _, offsets, tops = lp
    parts = []
    for i, begin in enumerate(offsets):
        stop = offsets[i + 1] if i + 1 < len(offsets) else begin + len(tokens[i])
        if begin < end and stop > start:
            if i == 0 or not isinstance(begin, int):
                raise Unscorable("the API echoed a label token with no token before it (the label starts the text?)")
            previous = tops[i - 1] if isinstance(tops[i - 1], dict) else {}
            value = previous.get(tokens[i])
            parts.append((begin, tokens[i], float(value) if _number(value) else None))
    if not parts:
        raise Unscorable("the API did not echo the prompt's tokens (echo=true is not supported)")
    return parts


def next_token_logprob(response: dict, token: str) -> float | None:
    """The log-probability of ``token`` as the next token, from a generation answer's first ``top_logprobs``
    (generated tokens are scored right even by servers whose echo is shifted); None when it is not among them."""
    lp = _logprobs(response)
    if lp is None:
        raise Unscorable("the API answered a generation request without token log-probabilities")
    tokens, values, _, tops = lp
    if tokens[0] == token and _number(values[0]):
        return float(values[0])
    value = tops[0].get(token) if isinstance(tops[0], dict) else None
    return float(value) if _number(value) else None
