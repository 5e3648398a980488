"""Sweep results to tables, statistics and plots.

Imports neither torch nor ray: it must run on a laptop holding only the results folder.
One idea per module, each usable from a notebook on its own:
``loading`` (folders -> frames), ``aggregate`` (last / best / offline-selected scores),
``statistics`` (IQM, optimality gap, bootstrap CIs, probability of improvement, profiles),
``tables`` (LaTeX, Markdown, CSV), ``plots``, ``summary``, ``cli`` (``python -m analysis``).
"""
