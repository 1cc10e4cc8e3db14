"""How fast a fit runs and how much memory it takes.

* ``speed``: epoch time against the compute floor and plain skorch, and
  peak memory (``speed_floor`` and ``speed_session`` are its parts);
* ``speed_profile``: where an epoch's time goes;
* ``speed_report``: both into ``docs/performance.md``;
* ``data_paths``: the data seam's cost per kind of input.

Run each as ``python -m benchmarks.speed.<name>``; ``benchmarks/README.md``
lists them all.
"""
