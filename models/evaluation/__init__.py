"""Evaluating a trained run: its metrics, resynthesis, matching methods, comparisons, report.

:mod:`.run_evaluation` predicts a split and writes the paper's metrics;
:mod:`.resynthesis` plays the predictions back and measures them (with the
matching methods of :mod:`.match_evaluation`) and keeps the sounds the report
plays; :mod:`.evaluation_folder` is the folder those files live in and
:mod:`.evaluation_identity` which run it is of; the views,
:mod:`.listening_report` and :mod:`.comparison`, only read that folder.

Over :mod:`models.matching` (metrics, matchers, audio) and :mod:`models.common`.
"""
