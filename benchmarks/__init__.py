"""Benchmarks of sklearn-dividemix; run each from the repository root.

``python -m benchmarks.<name> --help`` describes one. Among them:

* ``quality``: DivideMix against cross-entropy, CleanLearning and the
  clean-label oracle (``docs/benchmarks.md``); ``quality_data``,
  ``quality_methods``, ``quality_report``, ``quality_plots`` and
  ``quality_template`` are its parts;
* ``speed``: epoch time against the compute floor and plain skorch, and peak
  memory (``speed_floor``, ``speed_session``); ``speed_profile``: where an
  epoch's time goes; ``speed_report``: both into ``docs/performance.md``;
* ``data_paths``: the data seam's cost per kind of input;
* ``long_tail``, ``estimated_accuracy``, ``model_selection``,
  ``verdict_calibration``: the pages of the same names in ``docs/``;
* ``search_scaling``: grid search serially and on Dask and Ray workers;
* ``gpu_check``: one prepared run for a CUDA machine (``--smoke`` on a CPU).

``_common`` holds what they share: paths, machine description, memory
readers, the default module and JSON output.
"""
