"""Evaluation: suite files, the runner, ranx-scored metrics, reports and baselines (``rag eval``).

Modules: :mod:`evals.suite` (suite files), :mod:`evals.data` (BEIR datasets),
:mod:`evals.indexes` (cached evaluation indexes), :mod:`evals.runner` (runs and scoring),
:mod:`evals.report` (terminal, JSON, Markdown, plot), :mod:`evals.baseline` (regression gate),
:mod:`evals.cli` (the ``rag eval`` command).
"""
