"""The skorch net that DivideMix trains: one net's warm-up and MixMatch steps.

skorch does what it already does well: building the module and optimizer from
``module__*`` / ``optimizer__*`` parameters, device placement, ``compile``,
callbacks, per-net history and pickling that maps CUDA tensors to the CPU.
This subclass only adds the two kinds of training step and batched
inference on tensors that already live on the net's device.
"""

from __future__ import annotations

import contextlib
import functools
import operator
from dataclasses import dataclass

import torch
from skorch import NeuralNet
from skorch.callbacks import EpochTimer

from ._distributed import Replicas, SingleProcess
from ._losses import (
    negative_entropy,
    soft_cross_entropy,
    uniform_prior_penalty,
    unlabeled_mse,
)
from ._pretrained_input import resize_batch

__all__ = ["DivideMixNet", "MixMatchBatch", "WarmupBatch"]

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class WarmupBatch:
    """Inputs and noisy labels of one cross-entropy warm-up step."""

    X: torch.Tensor
    y: torch.Tensor
    confidence_penalty: bool


@dataclass
class MixMatchBatch:
    """A mixed batch: the first ``n_labeled`` rows come from labeled views."""

    X: torch.Tensor
    targets: torch.Tensor
    n_labeled: int
    unlabeled_weight: float
    # per-class weights of the labeled loss (balance_labeled=True), or None
    class_weight: torch.Tensor | None = None


class DivideMixNet(NeuralNet):
    """A skorch ``NeuralNet`` with DivideMix's warm-up and MixMatch steps.

    Parameters
    ----------
    module : callable
        Factory of the ``torch.nn.Module`` returning logits.
    amp : {'bf16', 'fp16'} or None, default=None
        Autocast dtype of the training forward passes; ``'fp16'`` also uses a
        gradient scaler (CUDA only).
    channels_last : bool, default=False
        Keep the module's conv weights in channels-last memory format.
    input_size : int or None, default=None
        Side of the square images the module expects: every image batch is
        resized on its device (shorter side, then a centre crop) right
        before the module, after the augmentation. None leaves sizes as
        they are.
    **kwargs
        Passed on to :class:`skorch.NeuralNet`.
    """

    # The processes of a data-parallel fit, set for the length of a fit by
    # replicated() (never pickled); alone, averaging gradients is a no-op.
    _replicas: Replicas = SingleProcess()

    def __init__(
        self,
        module,
        *args,
        criterion=torch.nn.CrossEntropyLoss,
        amp=None,
        channels_last=False,
        input_size=None,
        **kwargs,
    ):
        super().__init__(module, criterion, *args, **kwargs)
        self.amp = amp
        self.channels_last = channels_last
        self.input_size = input_size

    def get_default_callbacks(self):
        # No PrintLog or validation scoring: the estimator prints one line for
        # both nets and there is no validation split.
        return [("epoch_timer", EpochTimer())]

    def initialize_module(self):
        super().initialize_module()
        # Checked here: skorch would go on to fail on an empty parameter list.
        if not isinstance(self.module_, torch.nn.Module):
            raise TypeError(
                "module must return a torch.nn.Module; calling it returned "
                f"{type(self.module_).__name__}."
            )
        if self.channels_last:
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        return self

    def initialize(self):
        super().initialize()
        if isinstance(self.module, torch.nn.Module):
            # The module was handed over built (_setup.build_net): ``module``
            # is the object ``module_`` is. Pickled with it by skorch, it is
            # stored once and mapped to the right device on loading.
            attributes = self.cuda_dependent_attributes_
            if "module" not in attributes:
                self.cuda_dependent_attributes_ = [*attributes, "module"]
        use_scaler = self.amp == "fp16" and torch.device(self.device).type == "cuda"
        self.grad_scaler_ = torch.amp.GradScaler("cuda") if use_scaler else None
        return self

    def _set_training(self, training=True):
        # skorch walks every submodule on each call and a MixMatch step
        # switches modes three times: skip the walk when the mode is already
        # right (modes only ever change through this method).
        if self.initialized_ and self.module_.training == training:
            return
        super()._set_training(training)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context of the configured ``amp`` dtype, or a no-op."""
        if self.amp is None:
            return contextlib.nullcontext()
        device_type = torch.device(self.device).type
        return torch.autocast(device_type=device_type, dtype=_AMP_DTYPES[self.amp])

    @contextlib.contextmanager
    def replicated(self, replicas: Replicas):
        """Average gradients over ``replicas`` in every training step."""
        self._replicas = replicas
        try:
            yield self
        finally:
            del self._replicas

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        with self.autocast():
            logits = self.module_(batch.X)
        logits = logits.float()
        if isinstance(batch, WarmupBatch):
            terms = self._warmup_terms(logits, batch)
        else:
            terms = self._mixmatch_terms(logits, batch)
        # no 0 + ... as sum() starts with: one kernel and one graph node fewer
        loss = functools.reduce(operator.add, terms.values())
        if self.grad_scaler_ is not None:
            self.grad_scaler_.scale(loss).backward()
        else:
            loss.backward()
        # Before the optimizer step (and skorch's on_grad_computed, where
        # gradient clipping sees the averaged gradient): one step of every
        # process's share is one step of the whole batch.
        self._replicas.average_gradients(self.module_)
        return {"loss": loss.detach(), "y_pred": logits.detach(), "terms": terms}

    def _warmup_terms(self, logits, batch: WarmupBatch) -> dict:
        terms = {"loss_ce": self.criterion_(logits, batch.y)}
        if batch.confidence_penalty:
            terms["penalty"] = negative_entropy(logits)
        return terms

    def _mixmatch_terms(self, logits, batch: MixMatchBatch) -> dict:
        n = batch.n_labeled
        terms = {
            "loss_x": soft_cross_entropy(
                logits[:n], batch.targets[:n], batch.class_weight
            ),
            "loss_u": batch.unlabeled_weight
            * unlabeled_mse(logits[n:], batch.targets[n:]),
            "penalty": uniform_prior_penalty(logits),
        }
        return terms

    def _step_optimizer(self, step_fn):
        if self.grad_scaler_ is None:
            return super()._step_optimizer(step_fn)
        # A gradient scaler has to see the backward pass before the step, so
        # the closure runs once here instead of inside optimizer.step.
        step_fn()
        for name in self._optimizers:
            self.grad_scaler_.step(getattr(self, name + "_"))
        self.grad_scaler_.update()
        return None

    def to_device_input(self, X: torch.Tensor) -> torch.Tensor:
        """Apply the size and memory format the module expects to a batch.

        Images are resized to ``input_size`` (a pretrained network's input
        size). Channels-last input (a permuted NHWC batch) is made
        channels-first contiguous for modules that did not ask for
        channels-last, whose ``.view`` calls on activations would otherwise
        fail.
        """
        if X.ndim != 4:
            return X
        X = resize_batch(X, self.input_size)
        if self.channels_last:
            return X.contiguous(memory_format=torch.channels_last)
        return X.contiguous()

    @torch.no_grad()
    def forward_proba(self, X: torch.Tensor, *, training: bool) -> torch.Tensor:
        """Softmax of one batch without gradients, in train or eval mode.

        ``no_grad`` rather than ``inference_mode``: the result becomes a
        MixMatch target, which autograd must be allowed to save.
        """
        self._set_training(training)
        with self.autocast():
            logits = self.module_(self.to_device_input(X))
        return torch.softmax(logits.float(), dim=1)

    @torch.inference_mode()
    def eval_logits(self, X: torch.Tensor) -> torch.Tensor:
        """Eval-mode float32 logits of one batch already on the device."""
        self._set_training(False)
        return self.module_(self.to_device_input(X)).float()

    def clear_training_state(self) -> None:
        """Drop optimizer state and gradients: a fitted net keeps its weights.

        A fit always starts from scratch, so SGD's momentum buffers (as large
        as the weights) and the last step's gradients (as large again) are
        dead weight in memory and in every pickle.
        """
        for name in self._optimizers:
            getattr(self, name + "_").state.clear()
        self.module_.zero_grad(set_to_none=True)
