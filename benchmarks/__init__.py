"""Benchmarks of sklearn-dividemix; run each from the repository root.

``benchmarks/README.md`` lists every entry point with its command, what it
measures, how long it takes and the page it writes. By concern:

* ``quality`` (with ``quality_data``, ``quality_methods``,
  ``quality_report``, ``quality_tables``, ``quality_plots``,
  ``quality_ablation`` and ``quality_template``): DivideMix against
  cross-entropy, CleanLearning and the clean-label oracle
  (``docs/benchmarks.md``);
* :mod:`benchmarks.speed`: epoch time against the compute floor, peak
  memory, profiles, the data seam (``docs/performance.md``);
* :mod:`benchmarks.scaling`: data-parallel fits, distributed search, the
  multi-GPU estimate and the prepared GPU run (``docs/scaling.md``);
* :mod:`benchmarks.studies`: one question each, one page each
  (``docs/long_tail.md``, ``docs/estimated_accuracy.md``,
  ``docs/model_selection.md``, the verdict's thresholds).

What they share: ``_common`` (paths, machine description, memory readers,
the default module, JSON output), ``_data`` (the one data loader) and
``_pages`` (the one page writer).
"""
