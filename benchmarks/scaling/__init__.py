"""How a fit and a search scale past one process.

* ``data_parallel``: one process against two under ``torchrun``;
* ``search_scaling``: grid search serially and on Dask and Ray workers;
* ``scaling_estimate``: hours and memory of a large fit on several GPUs;
* ``gpu_check``: one prepared run for a CUDA machine (``--smoke`` on a CPU).

Run each as ``python -m benchmarks.scaling.<name>``; ``benchmarks/README.md``
lists them all.
"""
