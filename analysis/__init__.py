"""Sweep results to tables, statistics and plots (built in the analysis issue).

Imports neither torch nor ray: it must run on a laptop holding only the results folder.
"""
