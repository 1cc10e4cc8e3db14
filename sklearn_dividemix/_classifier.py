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
    StrOptions,
)
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._augment import resolve_augment
from ._checkpoint import open_checkpoints
from ._data import gather, is_dataset
from ._distributed import replica_device, resolve_replicas
from ._epochs import EpochReporter, LoopSettings, run_epochs
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
    into a probably-clean labeled set and a probably-noisy unlabeled set.
    Each net then trains on the *other* net's split with MixMatch: labels of
    the labeled set are refined with the net's own predictions, labels of the
    unlabeled set are guessed by both nets, and the two are mixed with mixup.

    Input can be held the way image users hold it: float or uint8 arrays of
    feature vectors ``(n, n_features)`` or images ``(n, channels, height,
    width)``, ``(n, height, width, channels)`` or ``(n, height, width)``, or
    a map-style ``torch.utils.data.Dataset`` (a ``torchvision`` dataset, an
    ``ImageFolder``) yielding ``(x, label)``, dicts such as ``{"image": x,
    "label": label}`` (``dataset_keys``), or ``x`` with ``y`` given. The
    data stays as it came (uint8 stays uint8, a memory-mapped array on disk);
    each batch is converted on the device: channels moved first, uint8
    scaled to [0, 1], then standardised per channel (``normalize``). The
    scale fit saw is part of the model (``input_scale_``): prediction input
    in another scale is converted to it or refused. Random augmentation runs
    on the device on whole batches (``augment``), so a Dataset must yield
    deterministic tensors of one shape (one with a random transform is
    refused).

    Read more in the :ref:`User Guide <your_data>`.

    Parameters
    ----------
    module : torch.nn.Module, callable or None, default=None
        The network mapping a batch of ``X`` to logits of shape (batch,
        n_classes). A module *instance*, such as a pretrained
        ``torchvision.models.resnet18(weights=...)`` or a
        ``timm.create_model(..., pretrained=True)``, is deep-copied once per
        net (the instance itself is never modified) and keeps its weights.
        Anything else that returns a ``torch.nn.Module`` is called once per
        net: a module class, a factory such as
        ``torchvision.models.resnet18`` or a ``functools.partial``; if it
        takes a ``num_classes`` argument (or ``**kwargs``) and is not given
        ``weights=`` or ``pretrained=True``, the number of classes of ``y``
        is passed unless ``module__num_classes`` is set. A classification
        head with another number of outputs (torchvision's ``fc``,
        ``classifier[-1]`` or ``heads.head``, Hugging Face's ``classifier``,
        timm's ``reset_classifier``) is replaced by a fresh ``nn.Linear``,
        drawn per net from ``random_state`` (``head_replaced_``). A forward
        that returns an object with ``.logits`` (Hugging Face) is read
        through it. ``None`` builds :class:`MLPClassifierModule` for 2-D
        input and :class:`SmallCNNClassifierModule` for images, sized from
        the data. Module arguments of factories are set the skorch way,
        ``module__<name>=value``. See :doc:`/fine_tuning`.
    max_epochs : int, default=30
        Total epochs, warm-up included (paper: 300 on CIFAR; this default is
        sized for small data sets on a CPU).
    warmup_epochs : int or 'auto', default='auto'
        Epochs of plain cross-entropy before the first division (paper: 10 on
        CIFAR-10, 30 on CIFAR-100, 1 on Clothing1M). ``'auto'`` is a tenth of
        ``max_epochs`` (at least 1, at most the paper's 10), after which
        warm-up goes on only while the evidence asks for it (see
        ``max_warmup_epochs``): a short budget is not spent half in warm-up,
        and any budget from 2 epochs up reaches MixMatch.
    max_warmup_epochs : int or 'auto', default='auto'
        Safeguard against a division made by nets that have not learned
        enough yet (weak nets, high noise): after ``warmup_epochs``, warm-up
        goes on one epoch at a time while the losses of either net are not
        bimodal (Ashman's D of the mixture below 2) *and* their separation
        still grows from one epoch to the next, but never past this many
        epochs. ``'auto'`` is ``max(warmup_epochs, max_epochs // 2)``, leaving
        at least half of the budget to MixMatch; ``warmup_epochs`` or less
        gives the paper's fixed warm-up. A budget of 2 epochs or more always
        keeps one for MixMatch. Each extra epoch is noted in ``history_``
        (and in the verdict's notes, ``fit_verdict_``).
    batch_size : int, default=64
        Size of the labeled and of the unlabeled mini-batch (paper: 64).
    lr : float or 'auto', default='auto'
        Learning rate (paper: 0.02 over 300 epochs). ``'auto'`` is 0.1 for
        the built-in modules (``module=None``) and the paper's 0.02 for a
        module of your own. 0.1 is sized for the small built-in networks and
        the default 30-epoch budget: in this project's benchmarks
        (``docs/benchmarks.md``) 0.02 left them too little training before
        the first division on scikit-learn's digits (80 % noise: 50 % test
        accuracy against 90 % with 0.1). A torchvision ResNet-18 trained from
        scratch at 0.1 starts with a loss far above chance (5.4-6.4 after the
        first epoch on 1,024 CIFAR-10 images, 3.4-3.9 with the learning-rate
        warm-up); at 0.02 with the warm-up it is 2.5, below ln(10) + 0.5.
    optimizer : callable, default=torch.optim.SGD
        Optimizer class. With SGD, ``optimizer__momentum=0.9`` and
        ``optimizer__weight_decay=5e-4`` (the paper's) are used unless set.
        skorch's ``optimizer__param_groups=[(pattern, {"lr": ...}), ...]``
        sets per-parameter learning rates.
    replace_head : 'auto' or bool, default='auto'
        Whether the module's classification head is replaced by a fresh one:
        ``'auto'`` when its number of outputs is not the number of classes,
        ``True`` always (a new task with as many classes as the pretraining
        one), ``False`` never.
    backbone_lr_ratio : float or 'auto', default='auto'
        Learning rate of every parameter outside the classification head, as
        a fraction of ``lr`` (the head trains at ``lr``). ``'auto'`` is 1:
        on this project's transfer benchmark a backbone at the full rate
        beat one at 0.1 of it by 3.6 points under DivideMix
        (:doc:`/fine_tuning`), and the paper fine-tunes every layer at one
        rate. Lower it for a strong backbone on a small data set.
    freeze_backbone_epochs : int, default=0
        Epochs at the start of training during which only the head is
        trained (the backbone gets no gradient, so these epochs are cheap).
    lr_decay : float, default=0.1
        Factor applied to the learning rate halfway through ``max_epochs``
        (paper: divided by 10 halfway). ``1.0`` keeps it constant.
    lambda_u : float or 'auto', default='auto'
        Weight of the unlabeled loss (paper: 0 at 20 % symmetric and 40 %
        asymmetric noise, 25 at 50-80 %, 50 at 90 % on CIFAR-10; 25 at 20 %
        and 150 at 50-90 % on CIFAR-100). ``'auto'`` applies that table to
        the share of samples the first division puts in the unlabeled set,
        the estimated noise rate r: with up to 31 classes, 0 for r < 0.3, 25
        for r < 0.77, else 50; with more classes, 25 for r < 0.3, else 150.
        The value used is ``lambda_u_``.
    p_threshold : float, default=0.5
        Clean probability above which a sample is labeled (paper: 0.5; 0.6 at
        90 % noise).
    temperature : float, default=0.5
        Sharpening temperature (paper: 0.5).
    alpha : float, default=0.5
        Parameter of the Beta distribution of mixup (paper: 4 on CIFAR over
        300 epochs; 0.5 on Clothing1M and WebVision, trained for far fewer
        epochs). ``0`` disables mixup. The default is sized for short budgets:
        in this project's 30-epoch benchmarks (``docs/benchmarks.md``) 0.5 was
        as good as 4 at 80 % noise and up to 3 points better elsewhere, as the
        strong mixing of 4 slows fitting. Use 4 for long, paper-style runs.
    lr_warmup_epochs : int or 'auto', default='auto'
        Epochs over which the learning rate rises linearly, step by step, from
        nearly 0 to ``lr`` at the start of warm-up (``0``: none). ``'auto'``
        is 1 for a module of your own and 0 for the built-in ones, which
        were tuned without it (on 8-epoch digits fits it cost 6 points of
        test accuracy). A deep network trained from scratch, such as a
        torchvision ResNet, otherwise takes first steps so large that its
        loss jumps far above chance (measured on CIFAR-10, see
        ``docs/benchmarks.md``).
    rampup_epochs : int or 'auto', default='auto'
        Epochs after warm-up over which the unlabeled weight rises linearly
        from 0 to ``lambda_u`` (paper: 16 of 300). ``'auto'`` is a third of
        the epochs left when warm-up ends (at least 1, at most 16), so that
        the full weight holds for most of a short budget.
    steps_per_epoch : {'labeled', 'all'}, default='labeled'
        Length of a MixMatch epoch. ``'labeled'`` (the paper's) is one pass
        over the labeled set, so every label called wrong removes updates;
        ``'all'`` (PES, Bai et al. 2021) takes ``n_samples / batch_size``
        steps whatever the split, cycling the labeled set: more updates at
        high noise, at a proportional cost in time.
    division : {'global', 'per_class', 'balanced'} or callable, \
            default='global'
        How each net's losses are split. ``'global'`` is the paper's one
        mixture over all samples. For class-imbalanced data, where the rare
        classes keep higher losses and a global split calls many of their
        clean labels wrong: ``'per_class'`` fits the mixture within each
        given class, on that class's own normalised losses (a class too small
        for two components, or whose split is not bimodal, takes the global
        posteriors); ``'balanced'`` keeps in every class the share of clean
        samples the global split keeps overall, lowest losses first.
        ``'balanced'`` is experimental: under symmetric noise most labels
        given as a rare class are wrong, and it lost 11-22 points of
        detection F1 in ``docs/long_tail.md``. A callable
        ``split(losses, labels, *, n_classes, random_state)`` is a strategy
        of your own: it gets one net's normalised (and window-averaged)
        losses and the encoded given labels and returns a
        ``Division``, as the built-in ones in ``sklearn_dividemix._divider``.
    loss_window : int, default=1
        Number of epochs of normalised losses averaged before the mixture is
        fitted (paper: 5 at 90 % noise, else 1).
    confidence_penalty : bool, default=False
        Add the negative-entropy penalty to the warm-up loss; use it for
        asymmetric (class-dependent) noise.
    augment : {'auto', 'crop', 'crop_flip', 'jitter'}, callable or None, \
            default='auto'
        Augmentation of training batches, applied on the device. ``'auto'``:
        random crop with padding (plus a horizontal flip for 3-channel images)
        for 4-D input, Gaussian jitter of 10 % of each feature's standard
        deviation for 2-D input. ``'crop'`` never flips. A callable maps a
        batch tensor to an augmented batch of the same shape.
    eval_batch_size : int, default=1024
        Batch size of the division passes and of prediction: every pass over
        the data streams it to the device in chunks of this size.
    normalize : 'auto', 'imagenet', bool or (mean, std), default='auto'
        Standardise the input on the device, batch by batch, with the mean
        and standard deviation of each channel (images) or feature (vectors),
        learnt in fit in one streamed pass, kept as ``input_mean_`` and
        ``input_std_`` and applied in fit and predict. ``'auto'`` standardises
        images and leaves feature vectors as they are (per-feature scaling
        blows up near-constant pixels of flattened images: 3-10 points of
        test accuracy lost on flattened MNIST); ``True`` standardises both;
        ``False`` neither, for input you scaled yourself or a ``Pipeline``
        with a scaler. uint8 input is always scaled to [0, 1] first. For a
        pretrained network, its own normalisation replaces the data's:
        ``'imagenet'`` (torchvision's weights), a per-channel ``(mean,
        std)`` pair on [0, 1] input, and with ``'auto'`` the
        ``pretrained_cfg`` mean and std of a timm model instance.
    input_size : int or None, default=None
        Side of the square images the network expects (224 for most
        ImageNet models): every image batch is resized on the device
        (shorter side to ``input_size``, then a centre crop) after the
        augmentation, in fit and predict. None keeps the size of ``X``.
    image_layout : {'auto', 'NCHW', 'NHWC'}, default='auto'
        Axis order of image samples. ``'auto'`` reads ``(n, height, width,
        channels)`` when only the last axis has 1, 3 or 4 entries and
        ``(n, channels, height, width)`` otherwise; a shape where both end
        axes could be channels, such as ``(n, 3, 32, 3)``, raises and asks for
        one of the two, and one where neither has 1, 3 or 4 entries, such as
        ``(n, 16, 16, 5)``, is read channels first with a warning.
        ``(n, height, width)`` is single-channel.
    dataset_keys : str, tuple of (str, str or None) or None, default=None
        Keys of the input and of the label in the items of a Dataset that
        yields dicts (the Hugging Face form, ``{"image": ..., "label":
        ...}``): ``(input_key, label_key)``, ``(input_key, None)`` for dicts
        without labels, or the input key alone (the label key found as with
        None). None tries ``'image'``, ``'img'``, ``'pixel_values'``,
        ``'x'``, ``'input'``, ``'inputs'``, ``'data'`` for the input and
        ``'label'``, ``'labels'``, ``'target'``, ``'targets'``, ``'y'``,
        ``'class'`` for the label. Items that are not dicts (``x``,
        ``(x, label)``) ignore it.
    amp : {'bf16', 'fp16'}, default=None
        Mixed precision of the training forward passes. ``'fp16'`` uses a
        gradient scaler and needs CUDA (it falls back to float32 on the CPU);
        ``'bf16'`` also runs on the CPU.
    channels_last : 'auto' or bool, default='auto'
        Channels-last memory format for image input; ``'auto'`` uses it on
        CUDA, and on the CPU for the default CNN (``module=None``), where it
        makes epochs 1.6-1.9x faster. A module of your own that calls ``.view``
        on conv activations needs ``channels_last=False``.
    compile : bool, default=False
        Compile both modules with ``torch.compile`` (skorch's ``compile``).
    device : str or torch.device, default='auto'
        ``'auto'`` is CUDA when available, else the CPU. In a data-parallel
        fit, ``'cuda'`` is the GPU of the process's ``LOCAL_RANK``.
    distributed : 'auto' or bool, default='auto'
        Data-parallel training over ``torch.distributed`` (for example under
        ``torchrun``): each process trains both nets on its share of every
        mini-batch and of every division pass, gradients are averaged, and
        every process ends with the same fitted estimator. ``'auto'`` does
        so when a process group of more than one process is initialised;
        ``True`` also initialises it from a ``torchrun`` launch (NCCL on
        CUDA, gloo on the CPU); ``False`` always fits in this process alone.
        See :doc:`/scaling`.
    checkpoint_dir : str, path-like or None, default=None
        Directory where the fit writes checkpoints: both nets and their
        optimizers, the division state, ``history_`` and every random
        stream, with a fingerprint of the data, the labels and the
        parameters that shape training. A fit whose ``checkpoint_dir`` holds
        a checkpoint of the same fingerprint continues from the newest one
        (``resumed_from_epoch_``; on the CPU the result is bit for bit the
        uninterrupted fit's); one of another fit raises. None writes
        nothing. See :doc:`/checkpoints`.
    checkpoint_every : int, default=1
        Epochs between checkpoints; one is also written after the last
        epoch and at the end of warm-up.
    random_state : int, RandomState instance or None, default=None
        Controls weight initialisation, data order, augmentation, mixup and
        the mixtures. Pass an int for reproducible output across multiple
        function calls on the CPU. See :term:`Glossary <random_state>`.
    verbose : int, default=0
        0 prints nothing, 1 one line per epoch, 2 also a progress bar.
    callbacks : list of skorch callbacks, default=None
        Callbacks given to each net (each gets its own copy). ``Checkpoint``
        and ``TrainEndCheckpoint`` write each net into ``<dirname>/net1`` and
        ``<dirname>/net2``. Callbacks that need a validation split or a
        training loss of one meaning throughout (``EarlyStopping``,
        ``EpochScoring``, ``BatchScoring``, ``Checkpoint`` monitoring a
        score) and ``LoadInitState`` are refused by ``fit``, saying what to
        use instead (``checkpoint_dir`` to resume a fit). ``warm_start`` and
        ``partial_fit`` are not supported: every fit starts from scratch.
    **kwargs : dict
        ``module__*``, ``optimizer__*``, ``callbacks__*`` and ``compile__*``
        parameters, routed to both nets by skorch, and ``iterator_train__*``
        / ``iterator_valid__*`` parameters of the ``DataLoader`` objects that read
        a Dataset (training batches / in-order passes): ``num_workers``,
        ``pin_memory``, ``persistent_workers``, ``prefetch_factor``, ... .
        Batches, order and collation are DivideMix's own and cannot be set.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of features (vectors) or channels (images) seen in fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.
    input_shape_ : tuple of int
        Shape of one sample as given, ``X.shape[1:]`` (a Dataset's first
        sample for Datasets).
    image_layout_ : {'NCHW', 'NHWC', 'NHW'} or None
        The layout the samples were read in; None for feature vectors.
    input_scale_ : InputScale
        How the training input was scaled, measured on a sample of rows (the
        first samples of a Dataset): ``kind`` is ``'uint8'`` (0-255, scaled
        to [0, 1]), ``'unit'`` (float in [0, 1]), ``'byte'`` (float in
        [0, 255]) or ``'other'``; ``low`` and ``high`` the range; ``str()``
        says it in words. Prediction input of another scale is converted to
        it (uint8 after float [0, 1] images is divided by 255, float 0-255
        after uint8 too, a ``ToTensor`` Dataset after uint8 arrays is taken
        as it is) or, when that is ambiguous, refused with a ``ValueError``.
    input_mean_, input_std_ : ndarray of shape (n_channels,) or \
            (n_features,), or None
        Per-channel (images) or per-feature (vectors) mean and standard
        deviation of the training input (uint8 scaled to [0, 1]), which
        standardise every batch; None when ``normalize=False``.
    clean_proba_ : ndarray of shape (n_samples,)
        Probability that each training label is correct: the mean of both
        nets' mixture posteriors after the last epoch (a net whose losses are
        then not bimodal contributes its last bimodal division instead).
    clean_mask_ : ndarray of shape (n_samples,)
        ``clean_proba_ > p_threshold``: True where the label is believed right.
    train_proba_ : ndarray of shape (n_samples, n_classes), dtype float32
        Class probabilities of the training samples after the last epoch
        (both nets' mean softmax, as ``predict_proba``): the ``pred_probs``
        to hand to cleanlab. Costs ``4 * n_samples * n_classes`` bytes.
    warmup_epochs_ : int
        Epochs of warm-up actually run: ``warmup_epochs`` plus any extension
        (see ``max_warmup_epochs``).
    lambda_u_ : float or None
        The unlabeled-loss weight used, ``lambda_u`` or the ``'auto'``
        choice; None if training never left warm-up.
    fit_verdict_ : dict
        Whether ``clean_mask_`` can be trusted, and the evidence: per net,
        the separation of its final division, its estimated noise rate (now
        and at the first division), its accuracy on the labeled set it
        trained on; the agreement between the two nets' masks; the share of
        each class's labels flagged; ``trusted``, ``reasons`` and ``advice``,
        and ``report``, all of it as text. An untrusted fit raises one
        :class:`UntrustedFitWarning` after training, the only warning about
        ``clean_mask_``: the main finding and its likeliest fixes, in a few
        lines; notes made during training (a split that was not
        bimodal, a tiny labeled set) are in ``history_`` and feed it. See
        :doc:`/reading_a_fit`.
    final_divisions_ : tuple of 2 dict
        Each net's division after the last epoch, the one behind
        ``clean_proba_``: the same keys as ``division_net1`` in ``history_``.
    net1_, net2_ : DivideMixNet
        The two trained skorch nets.
    history_ : skorch.History
        One row per epoch: ``epoch``, ``phase``, ``loss_net1``/``loss_net2``
        and their terms, ``labeled_net1``/``labeled_net2`` (labeled samples each
        net trained on, from the other's division), ``gmm_means_net1``/
        ``gmm_means_net2`` (clean and noisy component means of each net's
        division), ``division_net1``/``division_net2`` (mixture and loss
        histogram), ``lr``, ``unlabeled_weight``, ``notes``, ``dur``.
    device_ : str
        The device the nets were trained on.
    head_replaced_ : str or None
        Dotted name of the classification head replaced by a fresh one of
        ``n_classes`` outputs (``'fc'``, ``'classifier.3'``, ...); None when
        the module's head was kept.
    resumed_from_epoch_ : int or None
        The epoch of the checkpoint in ``checkpoint_dir`` the fit continued
        from; None for a fit that started fresh.

    See Also
    --------
    skorch.NeuralNetClassifier : One network trained with cross-entropy.
    sklearn.semi_supervised.SelfTrainingClassifier : Self-training on
        unlabeled samples.

    Notes
    -----
    Each MixMatch step runs six forward passes without gradients and one
    forward and backward pass on a batch four times the batch size, and every
    epoch adds a division pass over all samples per net: expect an epoch to
    cost several plain epochs. Training runs on CUDA when available.

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
        "p_threshold": [Interval(Real, 0, 1, closed="neither")],
        "temperature": [Interval(Real, 0, 1, closed="right")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "rampup_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "steps_per_epoch": [StrOptions({"labeled", "all"})],
        "lr_warmup_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "division": [StrOptions({"global", "per_class", "balanced"}), callable],
        "loss_window": [Interval(Integral, 1, None, closed="left")],
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
        lambda_u="auto",
        p_threshold=0.5,
        temperature=0.5,
        alpha=0.5,
        rampup_epochs="auto",
        steps_per_epoch="labeled",
        lr_warmup_epochs="auto",
        division="global",
        loss_window=1,
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
            result = run_epochs(
                LoopSettings.from_params(params),
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
            p_threshold=self.p_threshold,
            first_noise_rates=result.first_noise_rates,
            stopped_in_warmup=result.stopped_in_warmup,
            notes=result.notes,
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
        self.clean_proba_ = clean_proba
        self.clean_mask_ = clean_proba > self.p_threshold
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
