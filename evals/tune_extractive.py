"""Measure the extractive answerer's sentence choice on questions the answer suite does not ask.

Where the weights in ``rag.answering.extractive.ExtractiveSettings`` come from. For a seeded sample of SQuAD
questions *outside* the answer suite's sample, the suite's passages are retrieved once, and each
setting is scored by how often

- the best sentence holds a gold answer (``sentence``),
- the best sentence's passage holds one (``passage``: what citation precision measures),
- the answer the settings compose (best sentence and the next best of its passage) holds one (``answer``),
  and how long that answer is (``words``).

No abstention here: ``rag eval`` measures that. Usage::

    python -m evals.tune_extractive --index SQUAD_A_INDEX [--questions 700] [--grid]

prints a table and saves it as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import tomllib
from collections.abc import Sequence
from pathlib import Path

from evals.answers import AnswerSuiteSettings, _resolve, _sample, contains_gold
from evals.data import read_qrels, read_queries
from rag.answering.extractive import ExtractiveAnswerer

SUITE = Path(__file__).parent / "suites" / "squad_a_answers.toml"
GRID = {"passage_weight": (0.0, 0.5, 1.0), "cosine_weight": (0.0, 0.3, 0.6), "second_sentence_ratio": (0.0, 0.7, 0.85)}


def held_out_questions(suite_path: Path, count: int, seed: int = 7) -> list:
    """``count`` answerable questions of the suite's dataset that the suite itself does not sample."""
    suite = tomllib.loads(suite_path.read_text(encoding="utf-8"))
    suite["suite_path"] = str(suite_path.resolve())
    settings = AnswerSuiteSettings.from_suite(suite)
    folder = _resolve(suite["dataset"], suite)
    qrels = read_qrels(folder / "qrels.tsv")
    answerable = [q for q in read_queries(folder / "queries.jsonl") if q.extra.get("answers") and q.id in qrels]
    asked = {q.id for q in _sample(answerable, settings.questions, settings.seed)}
    return _sample([q for q in answerable if q.id not in asked], count, seed)


def measure(answerer: ExtractiveAnswerer, cases: Sequence[tuple[str, list[str], list[str]]]) -> dict[str, float]:
    """Shares of ``cases`` (question, passage texts, gold answers) right at each step (module docstring)."""
    never_abstains = ExtractiveAnswerer(answerer.encode, dataclasses.replace(answerer.settings, abstain_below=-1.0))
    right = {"sentence": 0, "passage": 0, "answer": 0}
    words = 0
    for question, passages, golds in cases:
        scoring = never_abstains.score(question, passages)
        if not scoring.sentences:
            continue
        best = scoring.sentences[0]
        chosen = never_abstains.choose(scoring)
        right["sentence"] += contains_gold(best.span.clean, golds)
        right["passage"] += contains_gold(passages[best.passage_index], golds)
        answer = " ".join(s.span.clean for s in chosen)
        right["answer"] += contains_gold(answer, golds)
        words += len(answer.split())
    return {**{name: count / len(cases) for name, count in right.items()}, "words": words / len(cases)}


def main(argv: Sequence[str] | None = None) -> int:
    from rag.answering.assistant import DEFAULT_K
    from rag.answering.extractive import ExtractiveSettings
    from rag.answering.sentences import EncodingCache
    from rag.retrieval.retriever import Retriever

    parser = argparse.ArgumentParser(prog="python -m evals.tune_extractive", description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True, help="an index of the suite's corpus (SQuAD dev half A)")
    parser.add_argument("--suite", default=str(SUITE))
    parser.add_argument("--questions", type=int, default=700)
    parser.add_argument("--grid", action="store_true", help=f"also try every combination of {GRID}")
    parser.add_argument("--out", default="eval-out/tune_extractive.json")
    arguments = parser.parse_args(argv)
    retriever = Retriever.open(arguments.index)
    cases = []
    for query in held_out_questions(Path(arguments.suite), arguments.questions):
        passages = [p.text for p in retriever.search(query.text, k=DEFAULT_K, mode="hybrid")]
        cases.append((query.text, passages, query.extra["answers"]))
    cache = EncodingCache(retriever.embedder.encode, capacity=50_000)
    defaults = ExtractiveSettings()
    settings = [defaults]
    if arguments.grid:
        settings += [
            dataclasses.replace(defaults, **dict(zip(GRID, values))) for values in itertools.product(*GRID.values())
        ]
    rows = []
    print(f"{len(cases)} held-out questions, {DEFAULT_K} passages each")
    print(" ".join(f"{name:>14}" for name in GRID) + f" {'sentence':>8} {'passage':>8} {'answer':>8} {'words':>6}")
    for setting in settings:
        shares = measure(ExtractiveAnswerer(cache.encode, setting), cases)
        values = {name: getattr(setting, name) for name in GRID}
        rows.append({**values, **shares})
        print(" ".join(f"{v:14.2f}" for v in values.values()) + " " + " ".join(f"{v:8.3f}" for v in shares.values()))
    out = Path(arguments.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"questions": len(cases), "rows": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
