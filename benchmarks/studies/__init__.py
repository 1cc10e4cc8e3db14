"""Studies behind single docs pages: one question, measured on real fits.

* ``long_tail``: the global division against per-class ones on long-tailed
  data (``docs/long_tail.md``);
* ``estimated_accuracy``: clean accuracy estimated from noisy labels against
  the truth (``docs/estimated_accuracy.md``);
* ``model_selection``: a search scored by noisy against estimated accuracy
  (``docs/model_selection.md``);
* ``verdict_calibration``: the end-of-fit verdict's thresholds against
  measurement (``docs/reading_a_fit.md``).

Run each as ``python -m benchmarks.studies.<name>``; ``benchmarks/README.md``
lists them all.
"""
