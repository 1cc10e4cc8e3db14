"""DivideMixClassifier: DivideMix as a scikit-learn estimator over two skorch nets."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    RealNotInt,
    StrOptions,
)
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._augment import resolve_augment
from ._checkpoint import open_checkpoints
from ._data import gather, is_dataset
from ._distributed import replica_device, resolve_replicas
from ._epoch_sample import check_epoch_sampling, epoch_steps
from ._epochs import EpochReporter, LoopSettings, run_epochs
from ._history import BALANCE_LABELED
from ._inputs import FittedInput, dataset_labels, prediction_source
from ._issues import LabelIssuesMixin
from ._params import RoutedParamsMixin
from ._setup import (
    build_nets,
    check_module_output,
    input_settings,
    resolve_device,
    validate_training_data,
)
from ._threads import limit_torch_threads, worker_thread_budget
from ._training import TrainingData
from ._verdict import judge_fit, warn_if_untrusted

__all__ = ["DivideMixClassifier"]


class DivideMixClassifier(
    LabelIssuesMixin, RoutedParamsMixin, ClassifierMixin, BaseEstimator
):
    """Classifier that learns from noisy labels and finds the wrong ones.

    DivideMix (Li, Socher and Hoi, 2020) trains two networks. After a
    cross-entropy warm-up, at every epoch each net fits a two-component
    Gaussian mixture to its per-sample losses and splits the training set
    into a probably-clean labeled set and a probably-noisy unlabeled set;
    each net then trains on the *other* net's split with MixMatch. Input may
    be float or uint8 arrays of feature vectors or images (channels first or
    last) or a map-style ``torch.utils.data.Dataset``; batches are converted,
    augmented and standardised on the device.

    Read more in the :ref:`User Guide <your_data>`; why the defaults are what
    they are is in :ref:`parameters`.

    Parameters
    ----------
    module : torch.nn.Module, callable or None, default=None
        The network mapping a batch to logits of shape (batch, n_classes): a
        module instance (deep-copied per net, pretrained weights kept) or a
        factory called per net, given ``num_classes`` when it takes it. None
        builds :class:`MLPClassifierModule` for 2-D input and
        :class:`SmallCNNClassifierModule` for images. See :doc:`/fine_tuning`.
    max_epochs : int, default=30
        Total epochs, warm-up included (paper: 300 on CIFAR).
    warmup_epochs : int or 'auto', default='auto'
        Epochs of plain cross-entropy before the first division. ``'auto'``
        is enough epochs for about 200 optimiser steps per net, at least 1
        and at most the paper's 10 or half the budget (10 epochs on 1,257
        samples, 3 on 6,000, at batch size 64), so that any budget from 2
        epochs reaches MixMatch; extended while the evidence asks for it
        (``max_warmup_epochs``). On long-tailed data use 10, so that the
        rare classes are learnt before the first division. See
        :ref:`parameters`.
    max_warmup_epochs : int or 'auto', default='auto'
        Most epochs warm-up may last while the losses are not yet bimodal and
        their separation still grows. ``'auto'`` is ``max(warmup_epochs,
        max_epochs // 2)``; ``warmup_epochs`` or less gives the paper's fixed
        warm-up. See :ref:`parameters`.
    batch_size : int, default=64
        Size of the labeled and of the unlabeled mini-batch (paper: 64).
    lr : float or 'auto', default='auto'
        Learning rate. ``'auto'`` is 0.1 for the built-in networks
        (``module=None``, or their classes or instances, pretrained or not)
        and the paper's 0.02 for a module of your own. See
        :ref:`parameters`.
    optimizer : callable, default=torch.optim.SGD
        Optimizer class; with SGD, the paper's ``optimizer__momentum=0.9``
        and ``optimizer__weight_decay=5e-4`` unless set.
    replace_head : 'auto' or bool, default='auto'
        Replace the module's classification head by a fresh one: ``'auto'``
        when its number of outputs is not the number of classes, ``True``
        always, ``False`` never.
    backbone_lr_ratio : float or 'auto', default='auto'
        Learning rate of the parameters outside the head, as a fraction of
        ``lr``. ``'auto'`` is 1, as measured. See :ref:`parameters`.
    freeze_backbone_epochs : int, default=0
        Epochs at the start during which only the head is trained. Measured
        on pretrained small CNNs, freezing for the warm-up cost 0.1-2.7
        points (see :ref:`fine_tuning`).
    lr_decay : float, default=0.1
        Factor applied to the learning rate halfway through ``max_epochs``
        (paper: 0.1). ``1.0`` keeps it constant.
    lambda_u : float or 'auto', default=0
        Weight of the unlabeled loss. The default trains on the labeled set
        only: on 20-40 epoch budgets the unlabeled loss cost 1-2 points on
        Fashion-MNIST images. ``'auto'`` applies the paper's table to the
        noise rate r the first division estimates: with up to 31 classes, 0
        for r < 0.3, 25 for r < 0.77, else 50; with more, 25 for r < 0.3,
        else 150 (``lambda_u_``). See :ref:`parameters`.
    p_threshold : float or 'auto', default='auto'
        Clean probability above which a sample is labeled (paper: 0.5; 0.6 at
        90 % noise). ``'auto'`` is 0.5 until warm-up ends, then 0.6 where the
        first division calls at least 40 % of the labels wrong and 0.5 below
        (``p_threshold_``). See :ref:`parameters`.
    temperature : float, default=0.5
        Sharpening temperature (paper: 0.5).
    alpha : float or 'auto', default='auto'
        Parameter of the Beta distribution of mixup; ``0`` disables mixup.
        ``'auto'`` is 0.5 when the first division after warm-up calls at
        least 30 % of the labels wrong (mixup keeps the nets from memorising
        them) and 0 below (where it cost accuracy on short budgets); the
        value used is ``alpha_``. The paper uses 4 for its 300-epoch runs.
        See :ref:`parameters`.
    lr_warmup_epochs : int or 'auto', default='auto'
        Epochs over which the learning rate rises linearly from nearly 0 to
        ``lr`` (``0``: none). ``'auto'`` is 1 for any module you pass (a
        class, factory or instance), 0 for ``module=None``. See
        :ref:`parameters`.
    rampup_epochs : int or 'auto', default=16
        Epochs after warm-up over which the unlabeled weight rises from 0 to
        ``lambda_u`` (paper: 16). ``'auto'`` is a third of the epochs left
        after warm-up (at least 1, at most 16). See :ref:`parameters`.
    steps_per_epoch : {'labeled', 'all'}, default='all'
        Length of a MixMatch epoch: ``n_samples / batch_size`` steps whatever
        the split (PES), so that a small labeled set at high noise still
        gets full epochs, or one pass over the labeled set (the paper's).
        See :ref:`parameters`.
    balance_labeled : bool or 'auto', default='auto'
        Weight the MixMatch labeled loss of each class by ``mean(n) / n_c``
        (at most 3), where ``n_c`` counts the class's labels in the current
        labeled set, as PES does: a class that the noise or the division
        thinned out still weighs as much as the others (under pair flips,
        the class whose labels were flipped away). Unlike scikit-learn's
        ``class_weight='balanced'``, the counts are those of the labels
        believed clean, read again at every division. ``'auto'`` balances
        when the first division after warm-up calls less than 30 % of the
        labels wrong (``balance_labeled_``). See :ref:`parameters`.
    samples_per_epoch : int, float or None, default=None
        Train each epoch on a fresh class-balanced sample of this many
        samples (a float: this share of the set) instead of the whole set,
        as the paper's Clothing1M runs do (1,000 mini-batches an epoch). See
        :ref:`fine_tuning`.
    divide_over : {'sample', 'all'}, default='sample'
        With ``samples_per_epoch``: divide the epoch's sample only (the
        paper's; one pass over the sample) or the whole set (one pass over
        everything, then train on the sample). ``loss_window`` needs
        ``'all'``. The final division always covers the whole set.
    noise_floor : bool or 'auto', default='auto'
        Flag, in every class, at least the share of labels that the nets'
        predictions contradict (highest losses first), so that labels the
        nets have begun to memorise do not drift into the labeled set at
        high noise. ``'auto'`` turns it on when the first division after
        warm-up calls at least half of the labels wrong (``noise_floor_``).
        See :ref:`parameters`.
    division : {'global', 'per_class', 'balanced'} or callable, \
            default='per_class'
        How each net's losses are split: one mixture per given class (so
        that clean samples of a hard class are not called wrong for being
        hard), one over all samples (the paper's), or the global share kept
        in every class (experimental); a callable is a strategy of your own.
        See :ref:`parameters`.
    loss_window : int or 'auto', default='auto'
        Epochs of normalised losses averaged before the mixture is fitted
        (paper: 5 at 90 % noise, else 1). ``'auto'`` is 1 until warm-up
        ends, then 5 where the first division calls at least 40 % of the
        labels wrong (the warm-up's last epochs count) and 1 below
        (``loss_window_``); 1 where each epoch divides a different sample
        (``samples_per_epoch`` with ``divide_over='sample'``).
    confidence_penalty : bool, default=False
        Add the negative-entropy penalty to the warm-up loss; use it for
        asymmetric (class-dependent) noise.
    augment : {'auto', 'crop', 'crop_flip', 'jitter'}, callable or None, \
            default='auto'
        Augmentation of training batches, on the device. ``'auto'``: random
        crop (and flip, for 3 channels) for images, Gaussian jitter for
        vectors. A callable maps a batch tensor to one of the same shape.
    eval_batch_size : int, default=1024
        Batch size of the division passes and of prediction.
    normalize : 'auto', 'imagenet', bool or (mean, std), default='auto'
        Standardise each channel (images) or feature (vectors) on the device
        with statistics learnt in fit. ``'auto'`` standardises images only;
        ``'imagenet'`` or a ``(mean, std)`` pair use a pretrained network's
        own. See :ref:`parameters`.
    input_size : int or None, default=None
        Side of the square images the network expects; array batches are
        resized and centre-cropped on the device, a Dataset's samples one by
        one before collation (so an image folder of mixed sizes works).
        Prediction then takes images of any size. None keeps the size of
        ``X``.
    image_layout : {'auto', 'NCHW', 'NHWC'}, default='auto'
        Axis order of image samples; ``'auto'`` reads it from which end axis
        has 1, 3 or 4 entries, and raises when both could. See
        :ref:`your_data`.
    dataset_keys : str, tuple of (str, str or None) or None, default=None
        Input and label keys of a Dataset that yields dicts, ``(input_key,
        label_key)``; None tries common names (``'image'``, ``'label'``,
        ...).
    amp : {'bf16', 'fp16'}, default=None
        Mixed precision of the training forward passes. ``'fp16'`` needs
        CUDA (it falls back to float32 on the CPU); ``'bf16'`` also runs on
        the CPU.
    channels_last : 'auto' or bool, default='auto'
        Channels-last memory format for images; ``'auto'`` uses it on CUDA
        and, on the CPU, for the default CNN. A module that calls ``.view``
        on conv activations needs ``False``.
    compile : bool, default=False
        Compile both modules with ``torch.compile`` (skorch's ``compile``).
    device : str or torch.device, default='auto'
        ``'auto'`` is CUDA when available, else the CPU.
    distributed : 'auto' or bool, default='auto'
        Data-parallel training over ``torch.distributed`` (``torchrun``):
        ``'auto'`` when a process group of several processes exists,
        ``True`` also initialises one, ``False`` never. See :doc:`/scaling`.
    checkpoint_dir : str, path-like or None, default=None
        Directory of checkpoints; a fit finding one of the same data and
        parameters there continues from it, one of another fit raises. None
        writes nothing. See :doc:`/checkpoints`.
    checkpoint_every : int, default=1
        Epochs between checkpoints; one is also written after the last epoch
        and at the end of warm-up.
    random_state : int, RandomState instance or None, default=None
        Controls weight initialisation, data order, augmentation, mixup and
        the mixtures. Pass an int for reproducible output across multiple
        function calls on the CPU. See :term:`Glossary <random_state>`.
    verbose : int, default=0
        0 prints nothing, 1 one line per epoch, 2 also a progress bar.
    callbacks : list of skorch callbacks, default=None
        Callbacks given to each net (each its own copy). Those that need a
        validation split, and ``LoadInitState``, are refused. See
        :ref:`parameters`.
    **kwargs : dict
        ``module__*``, ``optimizer__*``, ``callbacks__*`` and ``compile__*``
        parameters, routed to both nets by skorch, and ``iterator_train__*``
        / ``iterator_valid__*`` parameters of the ``DataLoader`` objects that
        read a Dataset (``num_workers``, ``pin_memory``, ...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of features (vectors) or channels (images) seen in fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.
    input_shape_ : tuple of int
        Shape of one sample as given (a Dataset's first sample).
    image_layout_ : {'NCHW', 'NHWC', 'NHW'} or None
        The layout the samples were read in; None for feature vectors.
    input_scale_ : InputScale
        How the training input was scaled (``kind``: ``'uint8'``,
        ``'unit'``, ``'byte'`` or ``'other'``; ``low``, ``high``); prediction
        input is converted to it or refused. See :ref:`parameters`.
    input_mean_, input_std_ : ndarray of shape (n_channels,) or \
            (n_features,), or None
        Statistics that standardise every batch; None when not normalised.
    clean_proba_ : ndarray of shape (n_samples,)
        Probability that each training label is correct: the mean of both
        nets' mixture posteriors after the last epoch.
    clean_mask_ : ndarray of shape (n_samples,)
        ``clean_proba_ > p_threshold_``: True where the label is believed
        right.
    train_proba_ : ndarray of shape (n_samples, n_classes), dtype float32
        Class probabilities of the training samples after the last epoch:
        the ``pred_probs`` to hand to cleanlab.
    warmup_epochs_ : int
        Epochs of warm-up actually run, extensions included.
    lambda_u_ : float or None
        The unlabeled-loss weight used; None if training never left warm-up.
    alpha_ : float or None
        Mixup's ``alpha`` used (``alpha='auto'`` resolved); None if training
        never left warm-up.
    balance_labeled_ : bool or None
        Whether the labeled loss balanced its classes
        (``balance_labeled='auto'`` resolved); None if training never left
        warm-up.
    p_threshold_ : float
        The clean probability a label had to pass (``p_threshold='auto'``
        resolved; 0.5 if training never left warm-up).
    loss_window_ : int
        Epochs of losses the last divisions averaged (``loss_window='auto'``
        resolved).
    noise_floor_ : bool or None
        Whether the noise floor was on (``noise_floor='auto'`` resolved);
        None if training never left warm-up.
    fit_verdict_ : dict
        Whether ``clean_mask_`` can be trusted, the evidence, ``reasons``,
        ``advice`` and a text ``report``; an untrusted fit raises one
        :class:`UntrustedFitWarning`. See :doc:`/reading_a_fit`.
    final_divisions_ : tuple of 2 dict
        Each net's division after the last epoch, the one behind
        ``clean_proba_``.
    net1_, net2_ : DivideMixNet
        The two trained skorch nets.
    history_ : skorch.History
        One row per epoch: ``epoch``, ``phase``, losses, labeled counts and
        division summaries per net, ``lr``, ``unlabeled_weight``, ``notes``.
    device_ : str
        The device the nets were trained on.
    head_replaced_ : str or None
        Dotted name of the head replaced by a fresh one; None when kept.
    resumed_from_epoch_ : int or None
        The checkpoint epoch the fit continued from; None for a fresh start.

    See Also
    --------
    skorch.NeuralNetClassifier : One network trained with cross-entropy.
    sklearn.semi_supervised.SelfTrainingClassifier : Self-training on
        unlabeled samples.

    Notes
    -----
    An epoch costs several plain epochs (seven passes per MixMatch step, and
    a division pass per net). Training runs on CUDA when available.

    References
    ----------
    .. [1] J. Li, R. Socher and S. C. H. Hoi, "DivideMix: Learning with Noisy
       Labels as Semi-supervised Learning", ICLR 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_dividemix import DivideMixClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DivideMixClassifier(max_epochs=2, warmup_epochs=1, random_state=0)
    >>> clf.fit(X / 16, y).clean_mask_.shape
    (1797,)
    >>> clf.predict_proba(X[:2] / 16).shape
    (2, 10)
    """

    _parameter_constraints: dict = {
        "module": [callable, None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "warmup_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "optimizer": [callable],
        "replace_head": [StrOptions({"auto"}), "boolean"],
        "backbone_lr_ratio": [
            Interval(Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "freeze_backbone_epochs": [Interval(Integral, 0, None, closed="left")],
        "lr_decay": [Interval(Real, 0, 1, closed="right")],
        "max_warmup_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "lambda_u": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "p_threshold": [Interval(Real, 0, 1, closed="neither"), StrOptions({"auto"})],
        "temperature": [Interval(Real, 0, 1, closed="right")],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "rampup_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "steps_per_epoch": [StrOptions({"labeled", "all"})],
        "balance_labeled": ["boolean", StrOptions({"auto"})],
        "samples_per_epoch": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
            None,
        ],
        "divide_over": [StrOptions({"sample", "all"})],
        "noise_floor": ["boolean", StrOptions({"auto"})],
        "lr_warmup_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "division": [StrOptions({"global", "per_class", "balanced"}), callable],
        "loss_window": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "confidence_penalty": ["boolean"],
        "augment": [
            StrOptions({"auto", "crop", "crop_flip", "jitter"}),
            callable,
            None,
        ],
        "eval_batch_size": [Interval(Integral, 1, None, closed="left")],
        "normalize": [StrOptions({"auto", "imagenet"}), "boolean", tuple],
        "input_size": [Interval(Integral, 1, None, closed="left"), None],
        "image_layout": [StrOptions({"auto", "NCHW", "NHWC"})],
        "dataset_keys": [str, tuple, None],
        "amp": [StrOptions({"bf16", "fp16"}), None],
        "channels_last": [StrOptions({"auto"}), "boolean"],
        "compile": ["boolean"],
        "device": [str, torch.device],
        "distributed": [StrOptions({"auto"}), "boolean"],
        "checkpoint_dir": [str, os.PathLike, None],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        module=None,
        *,
        max_epochs=30,
        warmup_epochs="auto",
        max_warmup_epochs="auto",
        batch_size=64,
        lr="auto",
        optimizer=torch.optim.SGD,
        replace_head="auto",
        backbone_lr_ratio="auto",
        freeze_backbone_epochs=0,
        input_size=None,
        lr_decay=0.1,
        lambda_u=0,
        p_threshold="auto",
        temperature=0.5,
        alpha="auto",
        rampup_epochs=16,
        steps_per_epoch="all",
        balance_labeled="auto",
        samples_per_epoch=None,
        divide_over="sample",
        noise_floor="auto",
        lr_warmup_epochs="auto",
        division="per_class",
        loss_window="auto",
        confidence_penalty=False,
        augment="auto",
        eval_batch_size=1024,
        normalize="auto",
        image_layout="auto",
        dataset_keys=None,
        amp=None,
        channels_last="auto",
        compile=False,
        device="auto",
        distributed="auto",
        checkpoint_dir=None,
        checkpoint_every=1,
        random_state=None,
        verbose=0,
        callbacks=None,
        **kwargs,
    ):
        self.module = module
        self.max_epochs = max_epochs
        self.warmup_epochs = warmup_epochs
        self.max_warmup_epochs = max_warmup_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.replace_head = replace_head
        self.backbone_lr_ratio = backbone_lr_ratio
        self.freeze_backbone_epochs = freeze_backbone_epochs
        self.input_size = input_size
        self.lr_decay = lr_decay
        self.lambda_u = lambda_u
        self.p_threshold = p_threshold
        self.temperature = temperature
        self.alpha = alpha
        self.rampup_epochs = rampup_epochs
        self.steps_per_epoch = steps_per_epoch
        self.balance_labeled = balance_labeled
        self.samples_per_epoch = samples_per_epoch
        self.divide_over = divide_over
        self.noise_floor = noise_floor
        self.lr_warmup_epochs = lr_warmup_epochs
        self.division = division
        self.loss_window = loss_window
        self.confidence_penalty = confidence_penalty
        self.augment = augment
        self.eval_batch_size = eval_batch_size
        self.normalize = normalize
        self.image_layout = image_layout
        self.dataset_keys = dataset_keys
        self.amp = amp
        self.channels_last = channels_last
        self.compile = compile
        self.device = device
        self.distributed = distributed
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        for name, value in kwargs.items():
            setattr(self, name, value)

    # -- fit ---------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train both nets on ``X`` with the noisy labels ``y``.

        A fit that raises (bad input or parameters, a module that fails to
        build, a loss that diverges: ``FloatingPointError`` naming the epoch and
        phase) leaves a previously fitted estimator as it was. A
        ``KeyboardInterrupt`` during the epochs ends training early, as in
        skorch: the fit returns a usable estimator whose ``history_`` ends
        with ``{"epoch": k, "phase": ..., "interrupted": True}``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), \
                (n_samples, channels, height, width), \
                (n_samples, height, width, channels) or \
                (n_samples, height, width), or torch Dataset
            Training data. uint8 arrays stay uint8 and are converted batch by
            batch; other dtypes are cast to float32 (the caller's array is not
            changed). A map-style Dataset yields ``x`` or ``(x, label)``,
            ``x`` a tensor, array or PIL image, all of one shape.
        y : array-like of shape (n_samples,) or None
            Given labels, possibly wrong. None for a Dataset that yields
            ``(x, label)``: its ``targets`` attribute is used when it has one,
            else the labels are read in one pass.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        previous = {k: v for k, v in vars(self).items() if k.endswith("_")}
        try:
            # Training runs on NumPy and torch whatever the input; sklearn's
            # array API dispatch would reach the GaussianMixture, whose k-means
            # initialisation does not support it.
            # In a task of a threaded Dask worker, torch would take every CPU
            # of the process in each of its tasks: cap the fit at its share.
            with (
                config_context(array_api_dispatch=False),
                limit_torch_threads(worker_thread_budget()),
            ):
                return self._fit(X, y)
        except BaseException:
            for name in [k for k in vars(self) if k.endswith("_")]:
                delattr(self, name)
            for name, value in previous.items():
                setattr(self, name, value)
            raise

    def _fit(self, X, y):
        check_epoch_sampling(self.samples_per_epoch, self.divide_over, self.loss_window)
        device = resolve_device(self.device)
        replicas = resolve_replicas(self.distributed, device)
        device = replica_device(device, replicas)
        fit_input, classes, y_encoded = validate_training_data(self, X, y, device)
        amp = None if (self.amp == "fp16" and device == "cpu") else self.amp
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=4)
        final_seeds = tuple(int(s) for s in rng.randint(2**31, size=2))
        y_device = torch.from_numpy(y_encoded.astype(np.int64)).to(device)
        data = TrainingData(
            source=fit_input.source,
            y=y_device,
            n_classes=len(classes),
            augment=resolve_augment(
                self.augment, fit_input.module_shape, fit_input.feature_std(device)
            ),
            generator=torch.Generator(device=device).manual_seed(int(seeds[2])),
            rng=np.random.RandomState(seeds[3]),
            batch_size=min(self.batch_size, len(y_encoded)),
            eval_batch_size=self.eval_batch_size,
            replicas=replicas,
        )
        data.view_generator = replicas.view_generator(data.generator, int(seeds[2]))
        # one process reports for all
        verbose = self.verbose if replicas.is_main else 0
        nets = build_nets(self, fit_input, len(classes), device, amp, seeds[:2])
        cuda_devices = [torch.device(device)] if device.startswith("cuda") else []
        # Dropout and user augmentations draw from the global torch RNG; fork it
        # so that the fit is reproducible and the caller's state untouched.
        with torch.random.fork_rng(devices=cuda_devices):
            first = torch.arange(min(len(y_encoded), 8), device=device)
            check_module_output(
                nets[0], gather(data.source, first), len(classes), data.augment
            )
            params = self.get_params()
            checkpoints = open_checkpoints(
                self.checkpoint_dir,
                self.checkpoint_every,
                params,
                data,
                y_encoded,
                classes,
            )
            torch.manual_seed(int(seeds[2]))
            steps = epoch_steps(self.samples_per_epoch, len(y_encoded), data.batch_size)
            result = run_epochs(
                LoopSettings.from_params(params, steps),
                nets,
                data,
                EpochReporter(verbose),
                final_seeds,
                checkpoints,
            )
        for net in nets:
            net.clear_training_state()
        self._set_fitted(fit_input, classes, y_encoded, device, nets, result)
        self.resumed_from_epoch_ = result.resumed_from_epoch
        verdict = judge_fit(
            result.divisions,
            result.predictions,
            y_encoded,
            n_classes=len(classes),
            p_threshold=self.p_threshold_,
            first_noise_rates=result.first_noise_rates,
            stopped_in_warmup=result.stopped_in_warmup,
            notes=result.notes,
            division=self.division,
        )
        self.fit_verdict_ = verdict.to_dict()
        EpochReporter(verbose).end_fit(self.clean_mask_, verdict)
        # _fit -> fit -> sklearn's _fit_context wrapper -> the caller's line
        warn_if_untrusted(verdict, stacklevel=4)
        return self

    def _set_fitted(self, fit_input, classes, y_encoded, device, nets, result):
        clean_proba = np.mean([d.clean_proba for d in result.divisions], axis=0)
        history = result.history
        self.classes_ = classes
        self.input_shape_ = tuple(fit_input.sample_shape)
        self.image_layout_ = fit_input.layout
        self.input_scale_ = fit_input.scale
        self.input_mean_ = fit_input.mean if fit_input.normalized else None
        self.input_std_ = fit_input.std if fit_input.normalized else None
        self.device_ = device
        self.head_replaced_ = nets[0].head_ if nets[0].head_replaced_ else None
        self.net1_, self.net2_ = nets
        self.history_ = history
        phases = [row.get("phase") for row in history]
        self.warmup_epochs_ = phases.count("warmup")
        # an interrupted epoch's row has no lambda_u
        self.lambda_u_ = next(
            (row["lambda_u"] for row in history if "lambda_u" in row), None
        )
        self.alpha_ = next((row["alpha"] for row in history if "alpha" in row), None)
        self.balance_labeled_ = next(
            (row[BALANCE_LABELED] for row in history if BALANCE_LABELED in row), None
        )
        self.noise_floor_ = result.noise_floor
        self.p_threshold_ = result.p_threshold
        self.loss_window_ = result.loss_window
        self.clean_proba_ = clean_proba
        self.clean_mask_ = clean_proba > self.p_threshold_
        self.final_divisions_ = tuple(d.summary() for d in result.divisions)
        self.train_proba_ = result.train_proba
        self._train_labels = y_encoded
        self._train_paths = fit_input.paths

    # -- prediction --------------------------------------------------------

    def _prediction_source(self, X):
        check_is_fitted(self)
        dtype = [np.float32, np.uint8]
        if is_dataset(X):
            pass
        elif self.image_layout_ is None:
            X = validate_data(self, X, dtype=dtype, allow_nd=True, reset=False)
        else:
            # Images may come in another layout than in fit (n_features_in_ is
            # their channel count, not X.shape[1]): their converted shape is
            # checked instead.
            X = check_array(X, dtype=dtype, allow_nd=True)
        fitted = FittedInput(
            sample_shape=self.input_shape_,
            layout=self.image_layout_,
            image_layout=self.image_layout,
            mean=self.input_mean_,
            std=self.input_std_,
            eval_loader_params=input_settings(self).eval_loader_params,
            scale=getattr(self, "input_scale_", None),
            dataset_keys=self.dataset_keys,
            input_size=self.input_size,
        )
        return prediction_source(X, fitted, self.net1_.device)

    def predict_proba(self, X):
        """Class probabilities: the mean of both nets' softmax outputs.

        Samples are streamed to the device in ``eval_batch_size`` chunks, so
        a large array is never copied there whole.

        Parameters
        ----------
        X : array-like or torch Dataset
            Input data, as in ``fit``; an array in the layout fit saw, a
            Dataset in any layout that gives the same image size.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities of the classes in ``classes_``; rows sum to 1.
        """
        source = self._prediction_source(X)
        nets = (self.net1_, self.net2_)
        chunks = []
        with torch.inference_mode():
            for batch in source.stream(self.eval_batch_size):
                proba = sum(torch.softmax(net.eval_logits(batch), 1) for net in nets)
                chunks.append(proba.double().cpu())
        n_classes = len(self.classes_)
        proba = torch.cat(chunks).numpy() if chunks else np.empty((0, n_classes))
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predict the class of each sample from both nets together.

        Parameters
        ----------
        X : array-like or torch Dataset
            Input data, as in ``fit``; an array in the layout fit saw, a
            Dataset in any layout that gives the same image size.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, taken from ``classes_``.
        """
        # predict_proba first: it raises NotFittedError before classes_ is read
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y=None, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against ``y``.

        Parameters
        ----------
        X : array-like or torch Dataset
            Test samples, as in ``fit``.
        y : array-like of shape (n_samples,), default=None
            True labels; may be None when ``X`` is a Dataset that yields
            ``(x, label)`` pairs or has ``targets``.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Mean accuracy.
        """
        if y is None and is_dataset(X):
            y = dataset_labels(X, input_settings(self))
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
